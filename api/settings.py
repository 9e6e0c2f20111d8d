"""Settings of the server process (VOXLINE_* variables), beyond the engine's own."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from voice_core.config import Settings


class ServerSettings(Settings):
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; postgresql://... for deployments. "
        "Default: a SQLite file, <data_dir>/voxline.db",
    )
    heartbeat_interval_s: float = Field(60.0, gt=0, description="how often monitors are checked")
    heartbeat_cache_s: float = Field(30.0, ge=0, le=60, description="status page response cache")
    campaign_lease_s: float = Field(
        30.0,
        gt=0,
        description="a dialed contact's lease; if its process dies, another takes the contact "
        "back after this long",
    )
    campaign_tick_s: float = Field(0.5, gt=0, description="dispatcher poll interval")
    org_max_concurrent_calls: int = Field(
        50, ge=1, description="campaign calls in flight per organization, all campaigns"
    )
    max_request_bytes: int = Field(
        1_000_000,
        gt=0,
        description="larger request bodies get 413 (a CSV of contacts is the biggest honest one)",
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
    # WhatsApp Business Calling (Cloud API).
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

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'voxline.db'}"

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerSettings:
        if isinstance(settings, ServerSettings):
            return settings
        return cls(**settings.model_dump())
