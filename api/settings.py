"""Settings of the server process (VOXLINE_* variables), beyond the engine's own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from voice_core.config import Settings

ROLES = ("api", "media", "dispatcher", "delivery")


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
    roles: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["api", "media", "dispatcher", "delivery"],
        description="parts this process runs, as JSON or comma list: api (HTTP API, "
        "dashboard, heartbeat), media (takes phone/WebRTC calls), dispatcher (campaigns), "
        "delivery (post-call analysis and deliveries)",
    )
    drain_timeout_s: float = Field(
        120.0, ge=0, description="on SIGTERM, how long active calls may go on before hang-up"
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
    whatsapp_ring_timeout_s: float = Field(
        45.0,
        gt=0,
        description="a business-initiated WhatsApp call not answered this long is "
        "terminated and ends as no_answer",
    )

    # Live monitoring (api.live, WS /api/v1/live).
    redis_url: str | None = Field(
        None,
        description="redis://host:6379/0: live events cross API processes through Redis "
        "pub/sub (REDIS_URL is read too); unset: each process serves its own calls' events",
    )
    live_channel_prefix: str = Field(
        "voxline:live", description="Redis channel prefix: <prefix>:org:<org_id>"
    )
    live_queue_size: int = Field(
        1000,
        ge=10,
        description="events buffered per live subscriber; one that falls this far behind "
        "is disconnected (close 1013) rather than slowing calls down",
    )

    # Post-call analysis and delivery (api.postcall): defaults suit production; the
    # tests shorten the timings.
    allow_private_delivery_targets: bool = Field(
        False,
        description="let webhooks and CRM base URLs point at private, loopback or link-local "
        "addresses (off: a user-supplied URL must not reach the internal network)",
    )
    analysis_enabled: bool = Field(True, description="LLM analysis of completed calls")
    analysis_wait_s: float = Field(
        120.0,
        ge=0,
        description="how long deliveries wait for a call's analysis before going without it",
    )
    analysis_timeout_s: float = Field(60.0, gt=0, description="one LLM analysis request")
    analysis_max_attempts: int = Field(3, ge=1, description="LLM endpoint errors, not junk")
    analysis_yield_to_calls_s: float = Field(
        15.0,
        ge=0,
        description="while calls are live, analysis waits up to this long for them to end "
        "(live audio shares the CPU and the LLM with it)",
    )
    analysis_max_transcript_chars: int = Field(
        4000, ge=200, description="longer transcripts are cut in the middle (context size)"
    )
    delivery_max_attempts: int = Field(8, ge=1, description="then the delivery is dead-lettered")
    delivery_backoff_base_s: float = Field(
        10.0, gt=0, description="first retry delay; doubles per attempt, with jitter"
    )
    delivery_backoff_max_s: float = Field(3600.0, gt=0, description="longest retry delay")
    delivery_timeout_s: float = Field(10.0, gt=0, description="one outbound HTTP request")
    delivery_concurrency: int = Field(8, ge=1, description="deliveries sent at once")
    delivery_lease_s: float = Field(
        120.0,
        gt=0,
        description="a delivery being sent is reserved this long; if its process dies, "
        "another takes it over after that",
    )
    delivery_poll_s: float = Field(
        1.0, gt=0, description="how often the outbox is read for work other processes queued"
    )
    smtp_host: str | None = Field(None, description="SMTP server for the email channel")
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "voxline@localhost"
    smtp_security: str = Field("starttls", pattern="^(starttls|ssl|none)$")
    hubspot_base_url: str = "https://api.hubapi.com"
    hubspot_token: str | None = Field(None, description="HubSpot private-app token")
    salesforce_instance_url: str | None = Field(
        None, description="https://<domain>.my.salesforce.com"
    )
    salesforce_api_version: str = "v61.0"
    salesforce_token: str | None = Field(None, description="OAuth access token")
    # The WhatsApp channel reuses whatsapp_graph_base_url, whatsapp_graph_version,
    # whatsapp_access_token and whatsapp_phone_number_id (above).

    @field_validator("roles", mode="before")
    @classmethod
    def _roles(cls, v: object) -> object:
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                import json

                v = json.loads(text)
            else:
                v = [r.strip() for r in text.split(",") if r.strip()]
        if isinstance(v, list):
            unknown = set(v) - set(ROLES)
            if unknown:
                raise ValueError(f"unknown roles {sorted(unknown)}; known: {', '.join(ROLES)}")
        return v

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
