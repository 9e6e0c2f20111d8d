"""The PBX transports a server runs come from its settings: off by default, and the
WebSocket ones never without credentials (they sit on the public HTTP port)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.agents import InMemoryAgentDirectory
from gateway.bridge import CallRegistry
from gateway.calls import InMemoryCallStore
from gateway.config import TransportSettings
from gateway.pbx import PbxSettingsError, build_pbx


def _build(tmp_path, **fields):
    return build_pbx(
        TransportSettings(_env_file=None, **fields),
        engine=None,  # type: ignore[arg-type]  (no call is placed here)
        store=InMemoryCallStore(),
        agents=InMemoryAgentDirectory.with_demo_agent(),
        recordings_dir=tmp_path,
        calls=CallRegistry(),
        observers=[],
    )


def test_no_pbx_transport_runs_unless_enabled(tmp_path) -> None:
    pbx = _build(tmp_path)
    assert pbx.audiosocket is None and pbx.gateways == [] and pbx.routers == []


@pytest.mark.parametrize("name", ["asterisk_websocket", "freeswitch_audio_fork", "jambonz_listen"])
def test_websocket_pbx_transport_refuses_to_start_without_credentials(tmp_path, name) -> None:
    with pytest.raises(PbxSettingsError, match=f"VOXLINE_{name.upper()}_USERNAME"):
        _build(tmp_path, **{f"{name}_enabled": True})


def test_enabled_transports_get_their_routes(tmp_path) -> None:
    pbx = _build(
        tmp_path,
        asterisk_websocket_enabled=True,
        asterisk_websocket_username="pbx",
        asterisk_websocket_password="secret",
        jambonz_listen_enabled=True,
        jambonz_listen_username="pbx",
        jambonz_listen_password="secret",
    )
    paths = {route.path for router in pbx.routers for route in router.routes}
    assert paths == {"/asterisk/websocket", "/jambonz/listen"}
    assert all(gw.username == "pbx" and gw.password == "secret" for gw in pbx.gateways)


async def test_audiosocket_listens_on_loopback_when_enabled(tmp_path) -> None:
    pbx = _build(tmp_path, audiosocket_enabled=True, audiosocket_port=0)
    await pbx.start()
    try:
        assert pbx.audiosocket is not None and pbx.audiosocket.host == "127.0.0.1"
        _reader, writer = await asyncio.open_connection("127.0.0.1", pbx.audiosocket.bound_port)
        writer.close()
    finally:
        await pbx.stop("server_shutdown")
