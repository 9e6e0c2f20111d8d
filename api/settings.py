"""Settings of the server process (VOXLINE_* variables), composed with the other layers'.

``ServerSettings`` is the one place the three layers meet: the server's own fields
(where it listens, its public URL, its data, its workers), ``engine`` (models,
threads, playout: ``voice_core.config.EngineSettings``) and ``transport`` (carrier,
WebRTC, WhatsApp calling: ``gateway.config.TransportSettings``). Every layer reads
the same flat VOXLINE_ namespace, each its own names, so the variables users set keep
one meaning whichever object holds them; keyword arguments follow the same names
(``ServerSettings(ice_servers=[...])`` is ``VOXLINE_ICE_SERVERS``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.config import TransportSettings
from voice_core.config import EngineSettings

ROLES = ("api", "media", "dispatcher", "delivery")

# The layers a server composes, by the field that holds each.
LAYERS: dict[str, type[BaseSettings]] = {"engine": EngineSettings, "transport": TransportSettings}


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXLINE_", env_file=".env", extra="ignore")

    engine: EngineSettings  # built by __init__ from the same sources when not given
    transport: TransportSettings

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(None, description="how carriers reach us, e.g. https://x")
    data_dir: str = Field("./var", description="SQLite file, recordings, the demo key")
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
    process_heartbeat_s: float = Field(
        5.0,
        gt=0,
        description="how often this process beats its heartbeat row and looks "
        "for dead processes whose calls in progress it should finalize",
    )
    process_timeout_s: float = Field(
        30.0,
        gt=0,
        description="a process whose heartbeat is older than this is dead: its calls in "
        "progress are finalized (failed, reason interrupted) by a live one, with what was "
        "said so far, and go through post-call analysis and delivery",
    )
    org_max_concurrent_calls: int = Field(
        50,
        ge=1,
        description="calls in flight (queued, ringing, in progress) per organization: "
        "dispatches beyond it get 429; campaigns dial at most this many at once",
    )
    # Keys and limits (api.keys).
    api_rate_per_minute: int = Field(
        600, ge=1, description="requests per minute per API key (a burst of as many); then 429"
    )
    max_call_duration_s: float = Field(
        3600.0,
        gt=0,
        description="ceiling on an agent's end_call.max_duration_s: saving above it is a 422",
    )
    webhook_secret_overlap_s: float = Field(
        86400.0,
        ge=0,
        description="after a signing-secret rotation the previous secret still signs (and "
        "verifies) this long, so receivers can switch without dropping a delivery",
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

    # Prometheus metrics (api.metrics): off unless one of these is set.
    metrics_token: SecretStr | None = Field(
        None,
        description="GET /metrics on the app answers a scraper sending this bearer token "
        "(unset: /metrics is a 404 there)",
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve /metrics on a listener of its own too"
    )
    metrics_host: str = Field(
        "127.0.0.1", description="that listener's bind address (keep it off public networks)"
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
    analysis_live_quiet_s: float = Field(
        0.5,
        ge=0,
        description="analysis runs only after no live turn has used the models (STT final, "
        "LLM) for this long, and is cancelled and rerun when one starts: live audio "
        "shares the CPU and the LLM with it",
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
    # The WhatsApp channel sends with the transport's Graph API credentials
    # (transport.whatsapp_graph_base_url, _graph_version, _access_token, _phone_number_id).

    # What tenants may make this server do (api.postcall.policy, SECURITY.md).
    tenant_secret_env_allowlist: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="environment variables tenants may name in token_env (delivery actions) "
        "and llm.api_key_env (agents), as JSON or comma list; empty: none (the operator's "
        "own settings are used, and only towards their provider's API host)",
    )
    egress_allowed_ports: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [80, 443],
        description="ports tenant-supplied URLs (webhooks, CRM bases, agent LLM endpoints) may "
        "use, as JSON or comma list; lifted with allow_private_delivery_targets",
    )
    template_timeout_s: float = Field(
        1.0, gt=0, le=30, description="one payload-template render (in a worker process)"
    )
    template_max_output_chars: int = Field(
        1_000_000, ge=1000, description="a template whose output is longer is refused"
    )

    def __init__(self, **values: Any) -> None:
        # Source options (_env_file=None, ...) apply to every layer, so one call decides
        # what the whole process reads.
        options = {k: v for k, v in values.items() if k.startswith("_")}
        for name, layer in LAYERS.items():
            own = {k: values.pop(k) for k in list(values) if k in layer.model_fields}
            if name not in values:
                values[name] = layer(**options, **own)
            elif own:
                raise ValueError(
                    f"{', '.join(sorted(own))}: give them inside {name}= or flat, not both"
                )
        super().__init__(**values)

    @field_validator("roles", mode="before")
    @classmethod
    def _roles(cls, v: object) -> object:
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                v = json.loads(text)
            else:
                v = [r.strip() for r in text.split(",") if r.strip()]
        if isinstance(v, list):
            unknown = set(v) - set(ROLES)
            if unknown:
                raise ValueError(f"unknown roles {sorted(unknown)}; known: {', '.join(ROLES)}")
        return v

    @field_validator("tenant_secret_env_allowlist", "egress_allowed_ports", mode="before")
    @classmethod
    def _json_or_comma_list(cls, v: object) -> object:
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return v

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'voxline.db'}"

    # Read-through for api/realtime/webrtc_routes.py, which still reads these flat
    # (app.state.settings). New code reads settings.transport / settings.engine.
    @property
    def ice_servers(self) -> list[str]:
        return self.transport.ice_servers

    @property
    def ice_username(self) -> str | None:
        return self.transport.ice_username

    @property
    def ice_credential(self) -> str | None:
        return self.transport.ice_credential
