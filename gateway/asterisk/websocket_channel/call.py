"""Calls over Asterisk's WebSocket channel: the gateway, one ``WebSocketChannelCall`` per
socket, and the router that serves them.

Asterisk dials voxline's endpoint (a ``websocket_client.conf`` connection whose ``uri``
is ``ws://<voxline>/asterisk/websocket``) and sends ``MEDIA_START``; then media flows
both ways as BINARY frames. The call is named by URI parameters the dial string adds
(``v(agent_id=...,call_id=...)``; any other parameter becomes call context), else by
a record carrying the channel's uniqueid, else it is a new inbound call for the
default agent.

The driver re-frames and re-times what we send, so agent audio goes out as the engine
paces it; a barge-in is ``FLUSH_MEDIA``; ``MEDIA_XOFF`` holds our media here until
``MEDIA_XON``; the goodbye's playout is confirmed by ``REPORT_QUEUE_DRAINED`` /
``QUEUE_DRAINED``. Anything wrong with one socket ends that call only, with a logged
reason and a final record.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from fastapi import APIRouter, WebSocket

from gateway.agents import AgentDirectory
from gateway.asterisk.basic_auth import basic_auth_ok
from gateway.asterisk.call_start import CallRequest, begin_call, bounded_context
from gateway.asterisk.playout_clock import PlayoutClock
from gateway.asterisk.pumps import run_pumps
from gateway.asterisk.websocket_channel.protocol import (
    ChannelEvent,
    DriverError,
    DtmfEnd,
    Hangup,
    Media,
    MediaStart,
    MediaXon,
    ProtocolError,
    QueueDrained,
    UnknownEvent,
    WebSocketChannelProtocol,
)
from gateway.asterisk.websocket_pump import WebSocketLine, chosen_subprotocol
from gateway.bridge import CallBridge, TransportGateway
from gateway.media_budget import MediaBudget
from gateway.recording import RECORDING_RATE
from voice_core.audio import FRAME_SAMPLES, Framer
from voice_core.audio.resample import StreamResampler
from voice_core.end_reasons import CallEnd, EndReason

log = logging.getLogger(__name__)

WEBSOCKET_CHANNEL_PATH = "/asterisk/websocket"
_RESERVED_PARAMS = frozenset({"agent_id", "call_id"})
# Our playout estimate may run this far ahead of a QUEUE_DRAINED that really means
# "all played" (its 20 ms tick, the socket): more than that and the report was stale.
_DRAIN_SLACK_S = 0.2


@dataclass(kw_only=True)
class WebSocketChannelGateway(TransportGateway):
    """What every Asterisk WebSocket-channel call shares.

    Limits, and why:
    - ``username``/``password``: when set, the upgrade must carry them as HTTP Basic
      credentials (``websocket_client.conf`` sends them); a socket without is refused.
    - ``start_timeout_s``: Asterisk sends ``MEDIA_START`` as soon as it connects.
    - ``idle_timeout_s``: Asterisk sends a media frame every 20 ms for the whole call.
    - ``send_timeout_s``: a peer that stops reading blocks our sends; past this the
      call is ended.
    - ``max_held_s``: agent audio held back while the driver said ``MEDIA_XOFF``; the
      engine's pacing keeps the driver's queue far below XOFF, so this only bounds a
      driver that never says ``MEDIA_XON``.
    - ``media_burst_s``: how far the caller's audio may run ahead of the wall clock
      (network jitter); a peer sending faster than real time is ended.
    """

    transport: ClassVar[str] = "asterisk_websocket"
    error_tag: ClassVar[str] = "asterisk_websocket"
    screens_answering_machines: ClassVar[bool] = True

    agents: AgentDirectory
    default_agent_id: str | None = None
    username: str | None = None
    password: str | None = None
    start_timeout_s: float = 10.0
    idle_timeout_s: float = 10.0
    send_timeout_s: float = 5.0
    max_held_s: float = 30.0
    media_burst_s: float = 2.0

    async def handle(self, websocket: WebSocket) -> None:
        if self.username is not None and not basic_auth_ok(
            websocket.headers.get("authorization"), self.username, self.password or ""
        ):
            log.warning("Asterisk WebSocket from %s refused: bad credentials", websocket.client)
            await websocket.close(code=1008, reason="unauthorized")
            return
        if not self.accepting:
            # 1013 "try again later": the connection fails and the dialplan can go on.
            await websocket.close(code=1013, reason="not taking new calls (draining)")
            return
        await WebSocketChannelCall(websocket, self).run()


def build_router(gateway: WebSocketChannelGateway, path: str = WEBSOCKET_CHANNEL_PATH) -> APIRouter:
    router = APIRouter()

    @router.websocket(path)
    async def asterisk_websocket(websocket: WebSocket) -> None:
        await gateway.handle(websocket)

    return router


class WebSocketChannelCall:
    def __init__(self, websocket: WebSocket, gateway: WebSocketChannelGateway) -> None:
        self.gw = gateway
        self.proto = WebSocketChannelProtocol()
        self.bridge = CallBridge(gateway, self, log=log)
        self.line = WebSocketLine(websocket, self.bridge, gateway.send_timeout_s)
        self.ws = websocket
        self.playout = PlayoutClock()
        self._held: deque[bytes] = deque()
        self._held_s = 0.0
        self._frame_s = 0.02
        self._drained = asyncio.Event()  # QUEUE_DRAINED came for our last report
        self._drained.set()
        self._caller_samples = 0  # 8 kHz samples recorded: the caller side's clock
        self._budget = MediaBudget(gateway.media_burst_s)
        # Set once MEDIA_START names the format.
        self._up: StreamResampler | None = None
        self._rec_up: StreamResampler | None = None
        self._down: StreamResampler | None = None
        self._down_framer: Framer | None = None
        self._up_framer = Framer(FRAME_SAMPLES)
        self._rec_down = StreamResampler(16000, RECORDING_RATE)
        self._peer_hung_up = False

    @property
    def call_id(self) -> str | None:
        return self.bridge.call_id

    async def run(self) -> None:
        await self.ws.accept(subprotocol=chosen_subprotocol(self.ws))
        await self.bridge.run(self._serve)

    async def hangup(self, reason: CallEnd | EndReason | str) -> None:
        await self.bridge.hangup(reason)

    # ---------------------------------------------------------------- the call

    async def _serve(self) -> None:
        while self.proto.start is None:
            for event in await self._receive(self.gw.start_timeout_s, "MEDIA_START"):
                if isinstance(event, MediaStart):
                    await self._begin(event)
            if self.bridge.ended:
                return
        await run_pumps(self.bridge.over, self._read_loop(), self.bridge.pump(self))

    async def _receive(self, timeout: float, waiting_for: str) -> list[ChannelEvent]:
        message = await self.line.receive(
            timeout, waiting_for, started=self.bridge.session is not None
        )
        if message is None:
            return []
        try:
            if message.text is not None:
                return self.proto.receive_text(message.text)
            return self.proto.receive_bytes(message.data or b"")
        except ProtocolError as exc:
            log.warning("Asterisk WebSocket %s: %s", self.ws.client, exc.message)
            self.line.fail(exc.message)
            return []

    def setup_media(self, start: MediaStart) -> None:
        """Converters for the format ``MEDIA_START`` names (engine: 16 kHz frames)."""
        fmt = start.format
        self._frame_s = start.optimal_frame_size / fmt.sample_bytes / fmt.sample_rate
        self._up = StreamResampler(fmt.sample_rate, 16000)
        self._rec_up = StreamResampler(fmt.sample_rate, RECORDING_RATE)
        self._down = StreamResampler(16000, fmt.sample_rate)
        self._down_framer = Framer(self._frame_samples())

    async def _begin(self, start: MediaStart) -> None:
        fmt = start.format
        self.setup_media(start)
        params = dict(self.ws.query_params)
        request = CallRequest(
            carrier="asterisk",
            carrier_call_id=start.channel_id or start.connection_id or None,
            call_id=params.get("call_id") or None,
            agent_id=params.get("agent_id") or None,
            context=bounded_context(params, _RESERVED_PARAMS),
        )
        if await begin_call(
            self.bridge, self.gw.agents, request, default_agent_id=self.gw.default_agent_id
        ):
            self._budget = MediaBudget(self.gw.media_burst_s)  # real time starts now
            log.info(
                "call %s: Asterisk channel %s (%s, %s) started",
                self.call_id,
                start.channel,
                start.channel_id or start.connection_id,
                fmt.name,
            )

    # ---------------------------------------------------------------- caller side

    async def _read_loop(self) -> None:
        while not self.bridge.ended:
            for event in await self._receive(self.gw.idle_timeout_s, "media"):
                await self._on_event(event)

    async def _on_event(self, event: ChannelEvent) -> None:
        session = self.bridge.session
        assert session is not None
        if isinstance(event, Media):
            if not self.bridge.ended:
                self._on_caller_audio(event.data)
        elif isinstance(event, DtmfEnd):
            session.push_dtmf(event.digit)
        elif isinstance(event, MediaXon):
            await self._send_held()
        elif isinstance(event, QueueDrained):
            if self.playout.queued_s > _DRAIN_SLACK_S:
                # A report from before our latest media: ask again for the real end.
                await self.line.send_text(self.proto.report_queue_drained())
            else:
                self._drained.set()
        elif isinstance(event, Hangup):
            self._peer_hung_up = True
            self.bridge.end_with(EndReason.CALLER_HANGUP)
        elif isinstance(event, DriverError):
            log.warning("call %s: Asterisk says: %s", self.call_id, event.text)
        elif isinstance(event, UnknownEvent):
            log.debug("call %s: ignoring Asterisk event %s", self.call_id, event.name)

    def _on_caller_audio(self, data: bytes) -> None:
        session = self.bridge.session
        assert session is not None and self.proto.start is not None
        assert self._up is not None and self._rec_up is not None
        fmt = self.proto.start.format
        if not self._budget.take(len(data) / fmt.sample_bytes / fmt.sample_rate):
            self.line.fail(
                f"media faster than real time ({self._budget.ahead_s:.1f} s ahead, "
                f"{self.gw.media_burst_s:g} s allowed)"
            )
            return
        pcm = fmt.decode(data)
        pcm8 = self._rec_up.push(pcm)
        self.bridge.recorder.add_caller(pcm8, self._caller_samples * 1000 // RECORDING_RATE)
        self._caller_samples += pcm8.size
        for frame in self._up_framer.push(self._up.push(pcm)):
            self.bridge.push_caller(frame)

    # ---------------------------------------------------------------- MediaSink

    async def play(self, pcm: np.ndarray) -> None:
        assert self._down is not None and self._down_framer is not None
        self.bridge.recorder.add_agent(self._rec_down.push(pcm))
        for frame in self._down_framer.push(self._down.push(pcm)):
            await self._send_media(frame)

    async def clear(self) -> None:
        assert self.proto.start is not None
        rate = self.proto.start.format.sample_rate
        self._down = StreamResampler(16000, rate)
        self._down_framer = Framer(self._frame_samples())
        self._rec_down = StreamResampler(16000, RECORDING_RATE)
        self._held.clear()
        self._held_s = 0.0
        self.bridge.recorder.clear_agent()
        self.playout.clear()
        self._drained.set()  # the driver's queue is empty now
        await self.line.send_text(self.proto.flush_media())

    async def end_utterance(self, utterance_id: int) -> None:
        assert self._down is not None and self._down_framer is not None
        # The resamplers hold the utterance's last ~100 ms: flush them (and start afresh).
        tail = self._down.flush()
        self._down = StreamResampler(16000, self._down.out_rate)
        self.bridge.recorder.add_agent(self._rec_down.flush())
        self._rec_down = StreamResampler(16000, RECORDING_RATE)
        for frame in [*self._down_framer.push(tail), *self._down_framer.flush()]:
            await self._send_media(frame)
        self._drained.clear()
        await self.line.send_text(self.proto.report_queue_drained())

    @property
    def queued_s(self) -> float:
        return self.playout.queued_s + self._held_s

    async def wait_for_playout(self) -> None:
        # The bridge bounds this wait, so a driver that never reports cannot hold the call.
        await self._drained.wait()

    def _frame_samples(self) -> int:
        assert self.proto.start is not None
        return self.proto.start.optimal_frame_size // self.proto.start.format.sample_bytes

    async def _send_media(self, frame: np.ndarray) -> None:
        assert self.proto.start is not None
        data = self.proto.start.format.encode(frame)
        if self.proto.xoff:
            self._hold(data)
            return
        await self._send_frame(data)

    async def _send_frame(self, data: bytes) -> None:
        for message in self.proto.media(data):
            await self.line.send_bytes(message)
        self.playout.sent(self._frame_s)

    def _hold(self, data: bytes) -> None:
        if self._held_s >= self.gw.max_held_s:
            log.warning(
                "call %s: Asterisk stayed in MEDIA_XOFF; oldest frame dropped", self.call_id
            )
            self._held.popleft()
            self._held_s -= self._frame_s
        self._held.append(data)
        self._held_s += self._frame_s

    async def _send_held(self) -> None:
        while self._held and not self.proto.xoff:
            data = self._held.popleft()
            self._held_s = max(0.0, self._held_s - self._frame_s)
            await self._send_frame(data)

    # ---------------------------------------------------------------- CallTransport

    async def stop_media(self, end: CallEnd) -> None:
        """Nothing to do: the pumps are over once ``_serve`` returns."""

    async def close(self, end: CallEnd) -> None:
        # Ask Asterisk to hang up the channel (it closes the socket itself otherwise).
        last = None
        if self.proto.start is not None and not self._peer_hung_up:
            last = self.proto.hangup()
        await self.line.close(end, last)
