"""The PBX transports a process runs, built from the transport settings (docs/pbx.md).

Asterisk AudioSocket is its own TCP server; the Asterisk WebSocket channel,
FreeSWITCH ``mod_audio_fork`` and jambonz ``listen`` are WebSocket routes on the
HTTP server. Every one is off unless enabled, and the WebSocket ones refuse to
start without credentials, because the HTTP port is usually the public one. With
``VOXLINE_ASTERISK_ARI_URL`` set, calls whose carrier is ``asterisk`` can be
transferred and sent DTMF through ARI (``gateway.asterisk.ari``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter

from gateway.agents import AgentDirectory
from gateway.asterisk.ari import AriClient, AsteriskActions
from gateway.asterisk.audiosocket.server import AudioSocketGateway
from gateway.asterisk.websocket_channel.call import WebSocketChannelGateway
from gateway.asterisk.websocket_channel.call import build_router as websocket_channel_router
from gateway.bridge import CallRegistry, EventObserver, TransportGateway
from gateway.calls import CallStore
from gateway.config import TransportSettings
from gateway.freeswitch.call import AudioForkGateway, JambonzGateway
from gateway.freeswitch.call import build_router as audio_fork_router
from voice_core.engine import VoiceEngine


class PbxSettingsError(ValueError):
    pass


@dataclass
class PbxTransports:
    audiosocket: AudioSocketGateway | None = None
    gateways: list[TransportGateway] = field(default_factory=list)  # the WebSocket ones
    routers: list[APIRouter] = field(default_factory=list)
    ari: AsteriskActions | None = None  # transfer and DTMF on Asterisk calls

    def all(self) -> list[TransportGateway]:
        return [*self.gateways, *([self.audiosocket] if self.audiosocket else [])]

    def set_accepting(self, accepting: bool) -> None:
        for gw in self.all():
            gw.accepting = accepting

    async def start(self) -> None:
        if self.audiosocket is not None:
            await self.audiosocket.start()

    async def stop(self, reason: str) -> None:
        if self.audiosocket is not None:
            await self.audiosocket.stop(reason)
        if self.ari is not None:
            await self.ari.aclose()


def _credentials(t: TransportSettings, name: str) -> tuple[str, str]:
    username = getattr(t, f"{name}_username")
    password = getattr(t, f"{name}_password")
    if not username or password is None:
        raise PbxSettingsError(
            f"VOXLINE_{name.upper()}_ENABLED needs VOXLINE_{name.upper()}_USERNAME and "
            f"_PASSWORD: the route is on the HTTP port, reachable by whoever reaches it"
        )
    return username, password.get_secret_value()


def build_pbx(
    t: TransportSettings,
    *,
    engine: VoiceEngine,
    store: CallStore,
    agents: AgentDirectory,
    recordings_dir: Path,
    calls: CallRegistry,
    observers: list[EventObserver],
) -> PbxTransports:
    def shared() -> dict:
        return dict(
            engine=engine,
            store=store,
            agents=agents,
            recordings_dir=recordings_dir,
            calls=calls,
            observers=observers,
            media_burst_s=t.media_burst_s,
        )

    out = PbxTransports()
    if t.audiosocket_enabled:
        out.audiosocket = AudioSocketGateway(
            **shared(),
            host=t.audiosocket_host,
            port=t.audiosocket_port,
            default_agent_id=t.audiosocket_default_agent_id,
        )
    if t.asterisk_websocket_enabled:
        user, password = _credentials(t, "asterisk_websocket")
        gw = WebSocketChannelGateway(
            **shared(),
            default_agent_id=t.asterisk_websocket_default_agent_id,
            username=user,
            password=password,
        )
        out.gateways.append(gw)
        out.routers.append(websocket_channel_router(gw))
    for name, cls in (
        ("freeswitch_audio_fork", AudioForkGateway),
        ("jambonz_listen", JambonzGateway),
    ):
        if getattr(t, f"{name}_enabled"):
            user, password = _credentials(t, name)
            fork = cls(
                **shared(),
                default_agent_id=getattr(t, f"{name}_default_agent_id"),
                username=user,
                password=password,
            )
            out.gateways.append(fork)
            out.routers.append(audio_fork_router(fork))
    if t.asterisk_ari_url:
        if not t.asterisk_ari_username or t.asterisk_ari_password is None:
            raise PbxSettingsError(
                "VOXLINE_ASTERISK_ARI_URL needs VOXLINE_ASTERISK_ARI_USERNAME and _PASSWORD "
                "(an ARI user of ari.conf)"
            )
        password = t.asterisk_ari_password.get_secret_value()
        out.ari = AsteriskActions(
            AriClient(t.asterisk_ari_url, t.asterisk_ari_username, password),
            store=store,
            transfer_context=t.asterisk_ari_transfer_context,
        )
        if calls.actions is not None:  # transfer and DTMF on calls whose carrier is asterisk
            calls.actions.add(out.ari)
    return out
