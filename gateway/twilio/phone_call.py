"""The WebSocket side of a phone call: pumps between the carrier's socket, the
sans-I/O ``MediaStreamProtocol`` and the shared ``CallBridge``.

Each connection is one ``PhoneCall``: the call's media sink (mu-law frames and
marks to the carrier) and its transport (the socket). Everything that can go
wrong with the socket or the carrier's messages ends that call (with a logged
reason and a final status on its record) and nothing else: the bridge catches
the call's errors and every wait on the peer has a timeout, so a half-closed
socket cannot hold a call (or its engine session) open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.agents import AgentDirectory
from gateway.bridge import CallBridge, TransportGateway
from gateway.calls import CallRecord, Direction
from gateway.media_budget import MediaBudget
from gateway.recording import RECORDING_RATE, StereoRecorder
from gateway.stream_tokens import StreamClaims, StreamTokens, TokenError
from gateway.twilio.media_stream import (
    FRAME_BYTES,
    Dtmf,
    Mark,
    Media,
    MediaStreamProtocol,
    ProtocolError,
    Start,
    Stop,
    StreamEvent,
)
from voice_core.audio import FRAME_SAMPLES, Framer, mulaw
from voice_core.audio.resample import StreamResampler
from voice_core.end_reasons import CallEnd, EndReason

log = logging.getLogger(__name__)

# customParameters the gateway itself reads (the token), or that only a token may say
# (call, agent): never call context. Others are context only if the token allows it.
_RESERVED_PARAMS = {"agent_id", "call_id", "org_id", "token"}
TOKEN_PARAM = "token"
# The organization of calls when the agent directory knows none (in-memory directories).
LOCAL_ORG = "local"
# The recorder keeps this much beyond the agent's duration cap (goodbye, drain).
_RECORDING_SLACK_S = 10.0
# WebSocket close codes (RFC 6455): 1000 normal, 1008 policy violation (bad messages).
_CLOSE_NORMAL = 1000
_CLOSE_PROTOCOL = 1008


OrgResolver = Callable[[str], Awaitable[str | None]]


async def _no_organizations(agent_id: str) -> str | None:
    return None


@dataclass(kw_only=True)
class PhoneGateway(TransportGateway):
    """What every phone call shares: the engine, the stores and the limits.

    Limits, and why:
    - ``start_timeout_s``: a carrier sends ``start`` right after connecting; a
      socket that says nothing for this long is not a call.
    - ``idle_timeout_s``: carriers send a media message every 20 ms for the
      whole call, even in silence, so this much quiet means the line is dead
      (or half-closed) and the call is ended rather than held open.
    - ``send_timeout_s``: a peer that stops reading fills the TCP buffers and
      blocks sends; past this the call is ended.
    - ``drain_timeout_s`` (shared): the agent's last words are in the carrier's
      buffer; this long at most for their mark to come back.
    - ``media_burst_s``: how far a caller's audio may run ahead of the wall clock
      (carrier batching, network jitter); beyond it the caller is not a live line.

    ``tokens`` opens streams (``mint_token`` for whoever hands a carrier the stream);
    ``organization_of`` says which organization an agent belongs to.
    """

    transport: ClassVar[str] = "phone"
    error_tag: ClassVar[str] = "gateway"
    screens_answering_machines: ClassVar[bool] = True

    agents: AgentDirectory
    start_timeout_s: float = 10.0
    idle_timeout_s: float = 10.0
    send_timeout_s: float = 5.0
    media_burst_s: float = 2.0
    tokens: StreamTokens = field(default_factory=StreamTokens.random)
    organization_of: OrgResolver = _no_organizations

    async def org_of(self, agent_id: str) -> str:
        return await self.organization_of(agent_id) or LOCAL_ORG

    async def mint_token(
        self, call_id: str, agent_id: str, *, pass_parameters: bool = False
    ) -> str:
        """A single-use token that opens the media stream of ``call_id`` with ``agent_id``."""
        org_id = await self.org_of(agent_id)
        return self.tokens.mint(
            call_id=call_id, org_id=org_id, agent_id=agent_id, pass_parameters=pass_parameters
        )

    async def handle(self, websocket: WebSocket) -> None:
        if not self.accepting:
            # 1013 "try again later": the carrier's retry lands on another process.
            await websocket.close(code=1013, reason="not taking new calls (draining)")
            return
        await PhoneCall(websocket, self).run()


class _CallOver(Exception):
    """Raised inside the pumps once the call's end reason is set."""


class PhoneCall:
    def __init__(self, websocket: WebSocket, gateway: PhoneGateway) -> None:
        self.ws = websocket
        self.gw = gateway
        self.proto = MediaStreamProtocol()
        self.bridge = CallBridge(gateway, self, log=log)
        self.marks_echoed: list[str] = []
        self._protocol_error = False
        self._marks_drained = asyncio.Event()
        self._marks_drained.set()
        # Seconds of agent audio sent: since the last mark, and per mark not yet echoed.
        self._unmarked_s = 0.0
        self._marked: dict[str, float] = {}
        # One resampler and framer per direction: they keep filter state between frames.
        self._up = StreamResampler(RECORDING_RATE, 16000)
        self._up_framer = Framer(FRAME_SAMPLES)
        self._down = StreamResampler(16000, RECORDING_RATE)
        self._down_framer = Framer(FRAME_BYTES)
        self._closed = False
        self._budget = MediaBudget()
        self._record_cap = 0  # recorder samples per side; set from the agent's duration cap

    @property
    def call_id(self) -> str | None:
        return self.bridge.call_id

    @property
    def media_stats(self) -> dict[str, int]:
        """Messages the carrier lost, reordered or repeated: for the call record."""
        return self.proto.sequence.stats.as_dict()

    async def run(self) -> None:
        await self.ws.accept()
        admitted = await self._admit()
        if admitted is None:
            return  # refused: nothing loaded, nothing written
        start, claims = admitted
        await self.bridge.run(lambda: self._serve(start, claims))

    async def hangup(self, reason: CallEnd | EndReason | str) -> None:
        """End the call from our side (control plane, shutdown); see ``CallBridge.hangup``."""
        await self.bridge.hangup(reason)

    # ---------------------------------------------------------------- the call

    async def _admit(self) -> tuple[Start, StreamClaims] | None:
        """Read up to ``start`` and check its token, before the bridge (which writes a
        record of every call it runs) sees the stream. Anything wrong closes it, 1008."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gw.start_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(self.ws.receive(), deadline - loop.time())
            except TimeoutError:
                return await self._refuse(f"no 'start' within {self.gw.start_timeout_s:g} s")
            except (WebSocketDisconnect, RuntimeError):
                message = {"type": "websocket.disconnect"}
            if message["type"] == "websocket.disconnect":
                self._closed = True
                log.info("media stream closed before 'start'")
                return None
            try:
                if message.get("text") is not None:
                    events = self.proto.receive_text(message["text"])
                else:
                    events = self.proto.receive_bytes(message.get("bytes") or b"")
            except ProtocolError as exc:
                return await self._refuse(exc.message)
            for event in events:
                if isinstance(event, Start):
                    return await self._check_token(event)

    async def _check_token(self, start: Start) -> tuple[Start, StreamClaims] | None:
        try:
            claims = await self.gw.tokens.redeem_shared(start.custom_parameters.get(TOKEN_PARAM))
        except TokenError as exc:
            return await self._refuse(exc.reason)
        if await self.gw.org_of(claims.agent_id) != claims.org_id:
            return await self._refuse("stream token: the agent is not in its organization")
        if claims.call_id in self.gw.calls:
            return await self._refuse("the call already has a media stream")
        return start, claims

    async def _refuse(self, reason: str) -> None:
        log.warning("media stream refused: %s", reason)
        self._closed = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(_CLOSE_PROTOCOL, reason[:120]), 2.0)
        return None

    async def _serve(self, start: Start, claims: StreamClaims) -> None:
        await self._begin(start, claims)
        if self.bridge.ended:
            return
        reader = asyncio.create_task(self._read_loop(), name=f"{self.call_id}:ws-read")
        writer = asyncio.create_task(self.bridge.pump(self), name=f"{self.call_id}:ws-write")
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            for task in (reader, writer):
                with contextlib.suppress(asyncio.CancelledError, _CallOver):
                    await task
            # A task that died of a bug: surface it to the bridge.
            for task in (reader, writer):
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    if not isinstance(exc, _CallOver):
                        raise exc  # type: ignore[misc]

    async def _receive(self, timeout: float, waiting_for: str) -> list[StreamEvent]:
        """The next message's events; ends the call and returns [] if it is over."""
        end = self.bridge.end_with
        try:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
        except TimeoutError:
            end(EndReason.TIMEOUT, f"no message for {timeout:g} s (waiting for {waiting_for})")
            return []
        except (WebSocketDisconnect, RuntimeError):
            message = {"type": "websocket.disconnect"}
        if message["type"] == "websocket.disconnect":
            self._closed = True
            started = self.proto.start is not None
            end(EndReason.CALLER_DISCONNECTED if started else EndReason.NEVER_STARTED)
            return []
        try:
            if message.get("text") is not None:
                return self.proto.receive_text(message["text"])
            return self.proto.receive_bytes(message.get("bytes") or b"")
        except ProtocolError as exc:
            self._protocol_error = True
            end(EndReason.PROTOCOL_ERROR, exc.message)
            return []

    async def _begin(self, start: Start, claims: StreamClaims) -> None:
        """Bind the stream to the call its token names; nothing of the caller's own
        parameters names the call or the agent."""
        bridge, store = self.bridge, self.gw.store
        call_id, agent_id = claims.call_id, claims.agent_id
        bridge.call_id = call_id
        record = await store.get(call_id)
        agent = await self.gw.agents.get(agent_id)
        if record is None:
            record = await store.create(
                CallRecord(
                    id=call_id,
                    agent_id=agent_id,
                    direction=Direction.INBOUND,
                    carrier="twilio",
                    carrier_call_id=start.call_sid or None,
                    stream_sid=start.stream_sid,
                )
            )
        else:
            record = await store.update(
                call_id,
                stream_sid=start.stream_sid,
                carrier_call_id=record.carrier_call_id or start.call_sid or None,
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
            params = start.custom_parameters
            context.update({k: v for k, v in params.items() if k not in _RESERVED_PARAMS})
        # The recording's timeline starts with the stream: carrier timestamps count from here.
        bridge.recorder = StereoRecorder()
        self._record_cap = round(
            (agent.end_call.max_duration_s + _RECORDING_SLACK_S) * RECORDING_RATE
        )
        self._budget = MediaBudget(self.gw.media_burst_s)
        bridge.register(call_id)
        await bridge.start_session(agent, context)
        log.info(
            "call %s: stream %s started, agent %s, organization %s",
            call_id,
            start.stream_sid,
            agent_id,
            claims.org_id,
        )

    # ---------------------------------------------------------------- caller side

    async def _read_loop(self) -> None:
        session = self.bridge.session
        assert session is not None
        while not self.bridge.ended:
            for event in await self._receive(self.gw.idle_timeout_s, "media"):
                if isinstance(event, Media):
                    if event.track == "inbound":
                        self._on_caller_audio(event)
                elif isinstance(event, Dtmf):
                    session.push_dtmf(event.digit)
                elif isinstance(event, Mark):
                    self._on_mark(event)
                elif isinstance(event, Stop):
                    self.bridge.end_with(EndReason.CALLER_HANGUP)

    def _on_caller_audio(self, media: Media) -> None:
        session = self.bridge.session
        assert session is not None
        if not self._budget.take(len(media.payload) / RECORDING_RATE):
            self._protocol_error = True
            self.bridge.end_with(
                EndReason.PROTOCOL_ERROR,
                f"media faster than real time ({self._budget.ahead_s:.1f} s ahead, "
                f"{self.gw.media_burst_s:g} s allowed)",
            )
            raise _CallOver
        pcm8 = mulaw.decode(media.payload)
        if self.bridge.recorder.caller.cursor < self._record_cap:
            self.bridge.recorder.add_caller(pcm8, media.timestamp)
        for frame in self._up_framer.push(self._up.push(pcm8)):
            self.bridge.push_caller(frame)

    def _on_mark(self, mark: Mark) -> None:
        if not mark.known:
            log.warning("call %s: carrier echoed a mark we never sent: %r", self.call_id, mark.name)
            return
        self.marks_echoed.append(mark.name)
        self._marked.pop(mark.name, None)
        if not self.proto.pending_marks:
            self._marks_drained.set()

    # ---------------------------------------------------------------- MediaSink

    async def play(self, pcm: np.ndarray) -> None:
        for frame in self._down_framer.push(self._down.push(pcm)):
            await self._send_agent_frame(frame)

    async def clear(self) -> None:
        # What the carrier buffered will not be heard; start the next utterance clean.
        self._down = StreamResampler(16000, RECORDING_RATE)
        self._down_framer = Framer(FRAME_BYTES)
        self.bridge.recorder.clear_agent()
        self._unmarked_s = 0.0
        self._marked = dict.fromkeys(self._marked, 0.0)
        await self._send(self.proto.clear())

    async def end_utterance(self, utterance_id: int) -> None:
        for frame in self._down_framer.flush():
            await self._send_agent_frame(frame)
        self._marks_drained.clear()
        name = f"utterance-{utterance_id}"
        self._marked[name], self._unmarked_s = self._unmarked_s, 0.0
        await self._send(self.proto.mark(name))

    @property
    def queued_s(self) -> float:
        # An upper bound: the carrier plays in real time, but says so only by marks.
        return self._unmarked_s + sum(self._marked.values())

    async def wait_for_playout(self) -> None:
        await self._marks_drained.wait()

    async def _send_agent_frame(self, frame: np.ndarray) -> None:
        if self.bridge.recorder.agent.cursor < self._record_cap:
            self.bridge.recorder.add_agent(frame)
        self._unmarked_s += frame.size / RECORDING_RATE
        for message in self.proto.media(mulaw.encode(frame)):
            await self._send(message)

    async def _send(self, message: str) -> None:
        try:
            await asyncio.wait_for(self.ws.send_text(message), self.gw.send_timeout_s)
        except TimeoutError:
            self.bridge.end_with(
                EndReason.TIMEOUT,
                f"carrier did not take a message for {self.gw.send_timeout_s:g} s",
            )
            raise _CallOver from None
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._closed = True
            self.bridge.end_with(EndReason.CALLER_DISCONNECTED)
            raise _CallOver from None

    # ---------------------------------------------------------------- CallTransport

    async def stop_media(self, end: CallEnd) -> None:
        """Nothing to do: the pumps are over once ``_serve`` returns. What the line
        lost or reordered is logged once here, beside the call's end."""
        stats = self.proto.sequence.stats
        if stats.anomalies:
            log.warning(
                "call %s: media stream messages: %d lost, %d reordered, %d duplicated",
                self.call_id,
                stats.frames_lost,
                stats.frames_reordered,
                stats.frames_duplicated,
            )

    async def close(self, end: CallEnd) -> None:
        if self._closed:
            return
        self._closed = True
        # Close reasons are limited to 123 bytes by RFC 6455.
        reason = str(end).encode()[:120].decode(errors="ignore")
        code = _CLOSE_PROTOCOL if self._protocol_error else _CLOSE_NORMAL
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code, reason), 2.0)
