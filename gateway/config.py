"""Carrier settings (VOXLINE_* environment variables, like ``voice_core.config.Settings``).

Kept here rather than in ``voice_core`` because the engine knows nothing of carriers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CarrierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXLINE_", env_file=".env", extra="ignore")

    carrier: Literal["simulated", "twilio"] = Field(
        "simulated", description="who places outbound calls; simulated needs no account"
    )
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_base: str = Field(
        "https://api.twilio.com", description="REST API base; a local server in tests"
    )
    twilio_from_number: str | None = Field(None, description="caller id for outbound calls")
