"""Which carrier dialects a process runs: off unless enabled, never without credentials."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gateway.agents import InMemoryAgentDirectory
from gateway.bridge import CallRegistry
from gateway.calls import InMemoryCallStore
from gateway.carrier_dialects import CarrierSettingsError, build_carrier_dialects
from gateway.config import TransportSettings
from gateway.stream_tokens import StreamTokens

KEY = base64.b64encode(b"k" * 32).decode()


async def _no_org(agent_id: str) -> str | None:
    return None


def build(tmp_path: Path, public_url: str | None = "https://x.test", **settings: object):
    return build_carrier_dialects(
        TransportSettings(_env_file=None, **settings),  # type: ignore[arg-type]
        public_url=public_url,
        engine=None,  # type: ignore[arg-type]  # nothing starts a call here
        store=InMemoryCallStore(),
        agents=InMemoryAgentDirectory(),
        recordings_dir=tmp_path,
        calls=CallRegistry(),
        observers=[],
        tokens=StreamTokens.random(),
        organization_of=_no_org,
    )


def paths(dialects) -> set[str]:
    return {route.path for router in dialects.routers for route in router.routes}


def test_nothing_is_served_unless_enabled(tmp_path: Path) -> None:
    dialects = build(tmp_path)
    assert dialects.gateways == [] and dialects.routers == [] and dialects.carriers == {}


def test_each_enabled_dialect_serves_its_routes(tmp_path: Path) -> None:
    dialects = build(
        tmp_path,
        telnyx_enabled=True, telnyx_api_key="k", telnyx_public_key=KEY,
        plivo_enabled=True, plivo_auth_id="MA1", plivo_auth_token="t",
        vonage_enabled=True, vonage_signature_secret="s" * 32,
        exotel_enabled=True, exotel_username="u", exotel_password="p",
        carrier="plivo",
    )  # fmt: skip
    assert {
        "/telnyx/call-control", "/telnyx/media-stream", "/plivo/answer", "/plivo/hangup",
        "/plivo/media-stream", "/vonage/answer", "/vonage/event", "/vonage/media-stream",
        "/exotel/voicebot", "/exotel/media-stream",
    } <= paths(dialects)  # fmt: skip
    assert [gw.transport for gw in dialects.gateways] == ["telnyx", "plivo", "vonage", "exotel"]
    assert list(dialects.carriers) == ["plivo"]


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"telnyx_enabled": True, "telnyx_api_key": "k"}, "VOXLINE_TELNYX_PUBLIC_KEY"),
        ({"telnyx_enabled": True, "telnyx_public_key": KEY}, "VOXLINE_TELNYX_API_KEY"),
        ({"plivo_enabled": True, "plivo_auth_id": "MA1"}, "VOXLINE_PLIVO_AUTH_TOKEN"),
        ({"vonage_enabled": True}, "VOXLINE_VONAGE_SIGNATURE_SECRET"),
        ({"exotel_enabled": True, "exotel_username": "u"}, "VOXLINE_EXOTEL_USERNAME"),
        ({"carrier": "telnyx"}, "VOXLINE_TELNYX_ENABLED"),
        (
            {
                "carrier": "telnyx",
                "telnyx_enabled": True,
                "telnyx_api_key": "k",
                "telnyx_public_key": KEY,
            },
            "VOXLINE_TELNYX_CONNECTION_ID",
        ),
        (
            {"carrier": "vonage", "vonage_enabled": True, "vonage_signature_secret": "s"},
            "_PRIVATE_KEY",
        ),
    ],
)
def test_enabled_without_credentials_refuses_to_start(
    tmp_path: Path, settings: dict[str, object], names: str
) -> None:
    with pytest.raises(CarrierSettingsError, match=names):
        build(tmp_path, **settings)
