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
