"""Transport settings: outbound carrier, WebRTC and WhatsApp calling (VOXLINE_* variables).

Kept here rather than in ``voice_core`` because the engine knows nothing of carriers, and
apart from ``api.settings`` because a transport needs none of the server's own settings.
``api.settings.ServerSettings`` composes this object with the engine's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TransportSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXLINE_", env_file=".env", extra="ignore")

    # Outbound phone calls.
    carrier: Literal["simulated", "twilio", "telnyx", "plivo", "vonage"] = Field(
        "simulated",
        description="who places outbound calls; simulated needs no account; telnyx, plivo and "
        "vonage need their dialect enabled (docs/carriers.md)",
    )
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_base: str = Field(
        "https://api.twilio.com", description="REST API base; a local server in tests"
    )
    twilio_from_number: str | None = Field(None, description="caller id for outbound calls")
    twilio_verify_signatures: bool = Field(
        True,
        description="check X-Twilio-Signature on every Twilio webhook (needs "
        "VOXLINE_TWILIO_AUTH_TOKEN); false is for local development only",
    )

    # Media streams (/media-stream): who may open one, and how fast it may send.
    stream_token_secret: SecretStr | None = Field(
        None,
        description="HMAC key of the single-use stream tokens (at least 16 bytes); unset: a "
        "random one per process, so a fleet must set the same value on every process",
    )
    stream_token_ttl_s: float = Field(
        60.0, gt=0, le=600, description="life of a stream token (minted in the TwiML answer)"
    )
    media_burst_s: float = Field(
        2.0,
        gt=0,
        le=30,
        description="how far ahead of real time a caller's inbound audio may run; beyond "
        "it the call ends",
    )

    # WebRTC (browser widget, test-call page, WhatsApp media).
    ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN/TURN URLs for WebRTC peers, as a JSON list of strings; empty by "
        "default so a call never contacts a third-party server unless configured",
    )
    ice_username: str | None = Field(None, description="TURN username (for every TURN URL)")
    ice_credential: str | None = Field(None, description="TURN credential")
    webrtc_loopback_candidates: bool = Field(
        False,
        description="dev/test only: offer 127.0.0.1 as the only host ICE candidate "
        "(aioice leaves loopback out), so calls work inside a loopback-only namespace",
    )
    webrtc_session_ttl_s: float = Field(
        60.0, gt=0, le=3600, description="life of a single-use browser session token"
    )
    webrtc_gather_timeout_s: float = Field(
        5.0, gt=0, description="wait for ICE gathering before answering (non-trickle)"
    )
    webrtc_connect_timeout_s: float = Field(
        20.0, gt=0, description="a peer not connected this long after its answer is dropped"
    )

    # WhatsApp Business Calling (Cloud API). The post-call WhatsApp channel sends its
    # messages with the same Graph API credentials.
    whatsapp_app_secret: str | None = Field(
        None, description="app secret: verifies X-Hub-Signature-256 on webhooks"
    )
    whatsapp_verify_token: str | None = Field(
        None, description="answers the webhook verification challenge"
    )
    whatsapp_phone_number_id: str | None = Field(None, description="business phone number id")
    whatsapp_access_token: str | None = Field(None, description="Graph API bearer token")
    whatsapp_graph_base_url: str = Field("https://graph.facebook.com", description="Graph API")
    whatsapp_graph_version: str = Field("v23.0", description="Graph API version path segment")
    whatsapp_ring_timeout_s: float = Field(
        45.0,
        gt=0,
        description="a business-initiated WhatsApp call not answered this long is "
        "terminated and ends as no_answer",
    )

    # PBX transports (docs/pbx.md). All off unless enabled. The WebSocket ones share the
    # HTTP port, which may be public, so they are refused at start-up without credentials.
    audiosocket_enabled: bool = Field(False, description="Asterisk AudioSocket TCP server")
    audiosocket_host: str = Field(
        "127.0.0.1",
        description="AudioSocket has no authentication: bind it only where "
        "just your Asterisk can reach it",
    )
    audiosocket_port: int = Field(9092, ge=0, le=65535)
    audiosocket_default_agent_id: str | None = None
    asterisk_websocket_enabled: bool = Field(False, description="Asterisk chan_websocket")
    asterisk_websocket_username: str | None = None
    asterisk_websocket_password: SecretStr | None = None
    asterisk_websocket_default_agent_id: str | None = None
    # ARI, for transfer and DTMF out on Asterisk calls (gateway/asterisk/ari.py).
    asterisk_ari_url: str | None = Field(
        None, description="Asterisk's HTTP server, e.g. http://127.0.0.1:8088; unset: no ARI"
    )
    asterisk_ari_username: str | None = None
    asterisk_ari_password: SecretStr | None = None
    asterisk_ari_transfer_context: str = Field(
        "voxline-transfer",
        description="dialplan context a transferred channel continues in (extension 'transfer')",
    )
    freeswitch_audio_fork_enabled: bool = Field(False, description="FreeSWITCH mod_audio_fork")
    freeswitch_audio_fork_username: str | None = None
    freeswitch_audio_fork_password: SecretStr | None = None
    freeswitch_audio_fork_default_agent_id: str | None = None
    jambonz_listen_enabled: bool = Field(False, description="jambonz listen verb")
    jambonz_listen_username: str | None = None
    jambonz_listen_password: SecretStr | None = None
    jambonz_listen_default_agent_id: str | None = None

    # Carrier dialects (docs/carriers.md). Each is off unless enabled, and refuses to start
    # without the credentials that verify its webhooks: its routes are public.
    telnyx_enabled: bool = Field(False, description="Telnyx Call Control + media streaming")
    telnyx_api_key: SecretStr | None = Field(None, description="Telnyx API v2 key (Bearer)")
    telnyx_public_key: str | None = Field(
        None, description="base64 Ed25519 public key that verifies Telnyx webhooks"
    )
    telnyx_connection_id: str | None = Field(
        None, description="Call Control application id that outbound calls use"
    )
    telnyx_api_base: str = Field("https://api.telnyx.com", description="REST API base")
    telnyx_codec: Literal["PCMU", "L16"] = Field(
        "PCMU", description="stream codec, both directions (L16 carries 16 kHz)"
    )
    plivo_enabled: bool = Field(False, description="Plivo answer XML + Audio Streams")
    plivo_auth_id: str | None = None
    plivo_auth_token: SecretStr | None = Field(
        None, description="signs X-Plivo-Signature-V3 and authenticates the REST API"
    )
    plivo_api_base: str = Field("https://api.plivo.com", description="REST API base")
    plivo_audio: Literal["mulaw", "l16"] = Field(
        "mulaw", description="stream content type: mu-law 8 kHz or L16 16 kHz"
    )
    vonage_enabled: bool = Field(False, description="Vonage NCCO connect + WebSocket audio")
    vonage_signature_secret: SecretStr | None = Field(
        None, description="verifies the signed JWT (HS256) on Vonage webhooks"
    )
    vonage_application_id: str | None = Field(None, description="Voice application id")
    vonage_private_key: SecretStr | None = Field(
        None, description="the application's private key (PEM): signs REST API JWTs (RS256)"
    )
    vonage_api_base: str = Field("https://api.nexmo.com", description="REST API base")
    exotel_enabled: bool = Field(False, description="Exotel Voicebot applet stream")
    exotel_username: str | None = Field(
        None, description="HTTP Basic user Exotel presents on the voicebot URL endpoint"
    )
    exotel_password: SecretStr | None = None
