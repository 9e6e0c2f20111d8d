"""One carrier media stream (Telnyx, Plivo, Vonage, Exotel) on the shared call bridge.

The carrier opens a WebSocket to us; its dialect (``StreamDialect``) turns the
messages into shared events; ``CarrierStreamCall`` pumps them:

- admission, before anything is loaded or written: read up to the stream's start and
  redeem its single-use stream token (in-band, or on the upgrade request where the
  dialect carries it there); a missing, forged, expired or reused token, or a stream
  for a call that already has one, closes the socket 1008 and leaves no record;
- the caller's side: audio (bounded to real time by ``MediaBudget``), keys, marks
  played, the stream stopping; a malformed message ends that call only (1008);
- the agent's side (the ``MediaSink``): audio resampled to the wire rate and cut in
  the dialect's chunks, ``clear`` on barge-in, a mark at the end of each utterance
  where the carrier echoes them; where it does not, a ``PlayoutClock`` estimates;
- the end: the bridge finalizes the record; if the call did not end by the caller
  hanging up, ``hang_up`` (the carrier's REST API) ends the phone call itself,
  because closing a media stream leaves the call up on every one of these carriers.

The socket half (``WebSocketLine``, ``run_pumps``, ``PlayoutClock``) is the one the
PBX transports use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from starlette.websockets import WebSocket

from gateway.agents import AgentDirectory
from gateway.asterisk.playout_clock import PlayoutClock
from gateway.asterisk.pumps import CallOver, run_pumps
from gateway.asterisk.websocket_pump import CLOSE_PROTOCOL, WebSocketLine
from gateway.bridge.call import CallBridge
from gateway.bridge.gateway import TransportGateway
from gateway.bridge.stream_dialect import (
    CallerAudio,
    Cleared,
    Digit,
    Ignored,
    Outgoing,
    Played,
    ProtocolError,
    StreamDialect,
    StreamEvent,
    StreamStarted,
    StreamStopped,
)
from gateway.calls import CallRecord, Direction
from gateway.media_budget import MediaBudget
from gateway.recording import RECORDING_RATE, StereoRecorder
from gateway.stream_tokens import StreamClaims, StreamTokens, TokenError
from voice_core.audio import FRAME_SAMPLES, Framer
from voice_core.audio.resample import StreamResampler
from voice_core.end_reasons import CallEnd, EndReason

log = logging.getLogger(__name__)

# The organization of calls when the agent directory knows none (in-memory directories).
LOCAL_ORG = "local"
# Custom parameters only a token may say: never call context.
_RESERVED = frozenset({"agent_id", "call_id", "org_id", "token"})
_MAX_CONTEXT_ITEMS = 32
_MAX_CONTEXT_VALUE = 500
# Ends that are the far side's doing: the phone call is already over, nothing to hang up.
_CALLER_ENDED = frozenset({EndReason.CALLER_HANGUP, EndReason.CALLER_DISCONNECTED})

OrgResolver = Callable[[str], Awaitable[str | None]]
HangUp = Callable[[str], Awaitable[bool]]  # carrier call id -> hung up


async def _no_organizations(agent_id: str) -> str | None:
    return None


async def _no_hang_up(carrier_call_id: str) -> bool:
    return False


@dataclass(kw_only=True)
class CarrierStreamGateway(TransportGateway):
    """What every call of one carrier's media streams shares.

    Limits, and why:
    - ``start_timeout_s``: a carrier sends its start right after connecting.
    - ``idle_timeout_s``: carriers send audio every 20 ms for the whole call, even in
      silence; this much quiet is a dead (or half-closed) line.
    - ``send_timeout_s``: a peer that stops reading blocks our sends.
    - ``media_burst_s``: how far the caller's audio may run ahead of the wall clock.

    ``tokens`` and ``organization_of`` are the process's (the Twilio route's own), so a
    token is single-use across every carrier. ``hang_up`` ends the carrier's call
    through its REST API.
    """

    transport: ClassVar[str] = "carrier"
    error_tag: ClassVar[str] = "carrier"
    screens_answering_machines: ClassVar[bool] = True
    carrier: ClassVar[str] = "carrier"  # the record's carrier name

    agents: AgentDirectory
    tokens: StreamTokens = field(default_factory=StreamTokens.random)
    organization_of: OrgResolver = _no_organizations
    hang_up: HangUp = _no_hang_up
    start_timeout_s: float = 10.0
    idle_timeout_s: float = 10.0
    send_timeout_s: float = 5.0
    media_burst_s: float = 2.0

    def new_dialect(self) -> StreamDialect:
        raise NotImplementedError

    def upgrade_token(self, websocket: WebSocket) -> str | None:
        """The stream token where a dialect carries it on the upgrade (query string)."""
        return websocket.query_params.get("token")

    async def org_of(self, agent_id: str) -> str:
        return await self.organization_of(agent_id) or LOCAL_ORG

    async def mint_token(self, call_id: str, agent_id: str) -> str:
        org_id = await self.org_of(agent_id)
        return self.tokens.mint(call_id=call_id, org_id=org_id, agent_id=agent_id)

    async def handle(self, websocket: WebSocket) -> None:
        if not self.accepting:
            # 1013 "try again later": the carrier's retry lands on another process.
            await websocket.close(code=1013, reason="not taking new calls (draining)")
            return
        await CarrierStreamCall(websocket, self).run()


class CarrierStreamCall:
    def __init__(self, websocket: WebSocket, gateway: CarrierStreamGateway) -> None:
        self.gw = gateway
        self.ws = websocket
        self.proto = gateway.new_dialect()
        self.bridge = CallBridge(gateway, self, log=log, on_end=self._hang_up_carrier)
        self.line = WebSocketLine(websocket, self.bridge, gateway.send_timeout_s)
        self.playout = PlayoutClock()
        self.marks_pending: set[str] = set()
        self._marks_drained = asyncio.Event()
        self._marks_drained.set()
        self._budget = MediaBudget(gateway.media_burst_s)
        self._caller_samples = 0
        self._rate = 8000
        self._setup(8000)
        self.started: StreamStarted | None = None

    @property
    def call_id(self) -> str | None:
        return self.bridge.call_id

    async def run(self) -> None:
        await self.ws.accept()
        admitted = await self._admit()
        if admitted is None:
            return  # refused: nothing loaded, nothing written
        started, claims = admitted
        await self.bridge.run(lambda: self._serve(started, claims))

    async def hangup(self, reason: CallEnd | EndReason | str) -> None:
        await self.bridge.hangup(reason)

    # ---------------------------------------------------------------- admission

    async def _admit(self) -> tuple[StreamStarted, StreamClaims] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gw.start_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(self.ws.receive(), deadline - loop.time())
            except TimeoutError:
                return await self._refuse(f"no stream start within {self.gw.start_timeout_s:g} s")
            except RuntimeError:
                message = {"type": "websocket.disconnect"}
            if message["type"] == "websocket.disconnect":
                self.line.closed = True
                log.info("%s media stream closed before its start", self.gw.carrier)
                return None
            try:
                events = self._parse(message)
            except ProtocolError as exc:
                return await self._refuse(exc.message)
            for event in events:
                if isinstance(event, StreamStarted):
                    return await self._check_token(event)

    async def _check_token(
        self, started: StreamStarted
    ) -> tuple[StreamStarted, StreamClaims] | None:
        try:
            claims = await self.gw.tokens.redeem_shared(
                started.token or self.gw.upgrade_token(self.ws)
            )
        except TokenError as exc:
            return await self._refuse(exc.reason)
        if await self.gw.org_of(claims.agent_id) != claims.org_id:
            return await self._refuse("stream token: the agent is not in its organization")
        if claims.call_id in self.gw.calls:
            return await self._refuse("the call already has a media stream")
        return started, claims

    async def _refuse(self, reason: str) -> None:
        log.warning("%s media stream refused: %s", self.gw.carrier, reason)
        self.line.closed = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(CLOSE_PROTOCOL, reason[:120]), 2.0)
        return None

    def _parse(self, message: dict) -> list[StreamEvent]:
        if message.get("text") is not None:
            return self.proto.receive_text(message["text"])
        return self.proto.receive_bytes(message.get("bytes") or b"")

    # ---------------------------------------------------------------- the call

    def _setup(self, rate: int) -> None:
        """Converters for the stream's rate (engine: 16 kHz frames; recording: 8 kHz)."""
        self._rate = rate
        self._up = StreamResampler(rate, 16000)
        self._rec_up = StreamResampler(rate, RECORDING_RATE)
        self._up_framer = Framer(FRAME_SAMPLES)
        self._reset_down()

    def _reset_down(self) -> None:
        self._down = StreamResampler(16000, self._rate)
        self._rec_down = StreamResampler(16000, RECORDING_RATE)
        self._down_framer = Framer(self.proto.chunk_samples)

    async def _serve(self, started: StreamStarted, claims: StreamClaims) -> None:
        await self._begin(started, claims)
        if self.bridge.ended:
            return
        await run_pumps(self.bridge.over, self._read_loop(), self.bridge.pump(self))

    async def _begin(self, started: StreamStarted, claims: StreamClaims) -> None:
        """Bind the stream to the call its token names; nothing the carrier sent names
        the call or the agent."""
        bridge, store = self.bridge, self.gw.store
        call_id, agent_id = claims.call_id, claims.agent_id
        self.started = started
        bridge.call_id = call_id
        record = await store.get(call_id)
        agent = await self.gw.agents.get(agent_id)
        carrier_id = started.carrier_call_id or None
        if record is None:
            record = await store.create(
                CallRecord(
                    id=call_id,
                    agent_id=agent_id,
                    direction=Direction.INBOUND,
                    from_number=started.from_number,
                    to_number=started.to_number,
                    carrier=self.gw.carrier,
                    carrier_call_id=carrier_id,
                    stream_sid=started.stream_id or None,
                )
            )
        else:
            record = await store.update(
                call_id,
                stream_sid=started.stream_id or None,
                carrier=record.carrier or self.gw.carrier,
                carrier_call_id=record.carrier_call_id or carrier_id,
                agent_id=agent_id,
            )
        if record.status.final:
            bridge.end_with(EndReason.ALREADY_ENDED, f"{call_id} already ended ({record.status})")
            bridge.call_id = None  # never touch a finished record
            return
        if agent is None:
            bridge.end_with(EndReason.UNKNOWN_AGENT, repr(agent_id))
            return
        context = {**record.context}
        if claims.pass_parameters:
            context.update(_bounded(started.custom))
        self._setup(started.sample_rate)
        bridge.recorder = StereoRecorder()  # the recording's timeline starts with the media
        self._budget = MediaBudget(self.gw.media_burst_s)
        bridge.register(call_id)
        await bridge.start_session(agent, context)
        log.info(
            "call %s: %s stream %s started (%s %d Hz), agent %s, organization %s",
            call_id,
            self.gw.carrier,
            started.stream_id,
            started.codec,
            started.sample_rate,
            agent_id,
            claims.org_id,
        )

    # ---------------------------------------------------------------- caller side

    async def _read_loop(self) -> None:
        while not self.bridge.ended:
            message = await self.line.receive(self.gw.idle_timeout_s, "media", started=True)
            if message is None:
                return
            try:
                if message.text is not None:
                    events = self.proto.receive_text(message.text)
                else:
                    events = self.proto.receive_bytes(message.data or b"")
            except ProtocolError as exc:
                log.warning("call %s: %s: %s", self.call_id, self.gw.carrier, exc.message)
                self.line.fail(exc.message)
                return
            for event in events:
                self._on_event(event)

    def _on_event(self, event: StreamEvent) -> None:
        session = self.bridge.session
        assert session is not None
        if isinstance(event, CallerAudio):
            if self.bridge.ended:
                return
            if not self._budget.take(event.pcm.size / self._rate):
                self.line.fail(
                    f"media faster than real time ({self._budget.ahead_s:.1f} s ahead, "
                    f"{self.gw.media_burst_s:g} s allowed)"
                )
                raise CallOver
            pcm8 = self._rec_up.push(event.pcm)
            at = self._caller_samples * 1000 // RECORDING_RATE
            self.bridge.recorder.add_caller(pcm8, at)
            self._caller_samples += pcm8.size
            for frame in self._up_framer.push(self._up.push(event.pcm)):
                self.bridge.push_caller(frame)
        elif isinstance(event, Digit):
            session.push_dtmf(event.digit)
        elif isinstance(event, Played):
            self.marks_pending.discard(event.name)
            if not self.marks_pending:
                self._marks_drained.set()
        elif isinstance(event, Cleared):
            self.marks_pending.clear()
            self._marks_drained.set()
        elif isinstance(event, StreamStopped):
            self.bridge.end_with(EndReason.CALLER_HANGUP, event.reason)
        elif isinstance(event, Ignored):
            # A carrier's own error report is worth seeing; anything else is routine.
            level = logging.WARNING if event.kind == "error" else logging.DEBUG
            log.log(
                level, "call %s: %s %s %s", self.call_id, self.gw.carrier, event.kind, event.detail
            )

    # ---------------------------------------------------------------- MediaSink

    async def play(self, pcm: np.ndarray) -> None:
        self.bridge.recorder.add_agent(self._rec_down.push(pcm))
        for chunk in self._down_framer.push(self._down.push(pcm)):
            await self._send_chunk(chunk)

    async def clear(self) -> None:
        # What the carrier buffered will not be heard; start the next utterance clean.
        self._reset_down()
        self.bridge.recorder.clear_agent()
        self.playout.clear()
        self.marks_pending.clear()
        self._marks_drained.set()
        await self._send(self.proto.clear())

    async def end_utterance(self, utterance_id: int) -> None:
        # The resamplers hold the utterance's last few ms: flush them, then start afresh.
        self.bridge.recorder.add_agent(self._rec_down.flush())
        tail = self._down_framer.push(self._down.flush()) + self._down_framer.flush()
        for chunk in tail:
            await self._send_chunk(chunk)
        self._reset_down()
        if self.proto.marks:
            name = f"utterance-{utterance_id}"
            self.marks_pending.add(name)
            self._marks_drained.clear()
            await self._send(self.proto.mark(name))

    @property
    def queued_s(self) -> float:
        return self.playout.queued_s

    async def wait_for_playout(self) -> None:
        # Bounded by the bridge: the carrier's marks say when, else the clock does.
        if self.proto.marks:
            await self._marks_drained.wait()
            return
        while self.playout.queued_s > 0:
            await asyncio.sleep(min(self.playout.queued_s, 0.1))

    async def _send_chunk(self, chunk: np.ndarray) -> None:
        self.playout.sent(chunk.size / self._rate)
        await self._send(self.proto.media(chunk))

    async def _send(self, messages: list[Outgoing]) -> None:
        for message in messages:
            if isinstance(message, bytes):
                await self.line.send_bytes(message)
            else:
                await self.line.send_text(message)

    # ---------------------------------------------------------------- CallTransport

    async def stop_media(self, end: CallEnd) -> None:
        """Nothing to do: the pumps are over once ``_serve`` returns."""

    async def close(self, end: CallEnd) -> None:
        await self.line.close(end)

    async def _hang_up_carrier(self) -> None:
        """The stream is over; unless the caller hung up, end the phone call too."""
        end = self.bridge.end
        if self.started is None or (end is not None and end.reason in _CALLER_ENDED):
            return
        carrier_id = self.started.carrier_call_id
        if not carrier_id:
            return
        try:
            if await self.gw.hang_up(carrier_id):
                log.info("call %s: %s call %s hung up", self.call_id, self.gw.carrier, carrier_id)
        except Exception:
            log.exception(
                "call %s: hanging up %s call %s failed", self.call_id, self.gw.carrier, carrier_id
            )


def _bounded(items: dict[str, str]) -> dict[str, str]:
    """The carrier's custom parameters (bounded), minus the ones only a token may say."""
    out: dict[str, str] = {}
    for key, value in items.items():
        if key in _RESERVED or not isinstance(key, str) or not isinstance(value, str):
            continue
        if len(out) >= _MAX_CONTEXT_ITEMS:
            break
        out[key[:64]] = value[:_MAX_CONTEXT_VALUE]
    return out
