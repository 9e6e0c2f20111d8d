"""The TCP side of AudioSocket calls: an asyncio server, one ``AudioSocketCall`` per
connection, pumping between the socket, the sans-I/O ``AudioSocketProtocol`` and the
shared ``CallBridge``.

Asterisk connects, sends the call's UUID, then a 20 ms frame of 8 kHz signed linear
audio every 20 ms for as long as the call lasts. The UUID names the call: a UUID
registered ahead (``AudioSocketGateway.expect``, from an ARI or dialplan step), a call
record whose carrier id is the UUID, or else a new inbound call for the default agent.

Asterisk writes what we send to the channel the moment it arrives, so the agent's
audio is paced here (``_pace``: one frame every 20 ms on the loop's clock) from a
small queue the engine keeps about ``playout_lead_ms`` ahead; a barge-in empties the
queue, which is all "flush" can mean on this protocol. Whatever goes wrong with one
connection (bad bytes, silence, a peer that stops reading) ends that call with a
logged reason and a final record, and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from gateway.agents import AgentDirectory
from gateway.asterisk.audiosocket.protocol import (
    FRAME_BYTES,
    SAMPLE_RATE,
    Audio,
    AudioSocketEvent,
    AudioSocketProtocol,
    CallId,
    Dtmf,
    Hangup,
    PeerError,
    ProtocolError,
)
from gateway.asterisk.call_start import CallRequest, begin_call
from gateway.asterisk.pumps import CallOver, run_pumps
from gateway.bridge import CallBridge, TransportGateway
from gateway.media_budget import MediaBudget
from voice_core.audio import FRAME_SAMPLES, Framer
from voice_core.audio.resample import StreamResampler
from voice_core.end_reasons import CallEnd, EndReason

log = logging.getLogger(__name__)

FRAME_S = 0.02
_FRAME_SAMPLES_8K = FRAME_BYTES // 2
_READ_CHUNK = 64 * 1024
# A pacer that wakes up late (a loaded loop) catches up at most this far in one go,
# so a stall is heard as a short gap, not as a burst Asterisk forwards all at once.
_MAX_CATCH_UP_S = 0.06


@dataclass(frozen=True)
class ExpectedCall:
    """What an ARI or dialplan step registered for a UUID before Asterisk connects."""

    agent_id: str | None = None
    call_id: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    expires_at: float = 0.0


@dataclass(kw_only=True)
class AudioSocketGateway(TransportGateway):
    """An AudioSocket server and what its calls share.

    Limits, and why:
    - ``host``/``port``: loopback by default. AudioSocket has no authentication at
      all, so only bind it where only your Asterisk can reach it.
    - ``uuid_timeout_s``: Asterisk sends the UUID right after connecting; a socket
      that says nothing for this long is not a call.
    - ``idle_timeout_s``: Asterisk sends a frame every 20 ms for the whole call, so
      this much quiet means the line is dead (or half-closed).
    - ``send_timeout_s``: a peer that stops reading fills the TCP buffers; past this
      the call is ended.
    - ``max_queue_s``: the agent audio queued for pacing; the engine keeps it near its
      playout lead, this only bounds a misbehaving producer.
    - ``expect_ttl_s``: a UUID registered with ``expect`` whose connection never comes
      (the channel hung up first) is forgotten after this long.
    - ``media_burst_s``: how far the caller's audio may run ahead of the wall clock
      (network jitter); a peer sending faster than real time is ended.
    """

    transport: ClassVar[str] = "audiosocket"
    error_tag: ClassVar[str] = "audiosocket"
    screens_answering_machines: ClassVar[bool] = True

    agents: AgentDirectory
    host: str = "127.0.0.1"
    port: int = 9092
    default_agent_id: str | None = None
    uuid_timeout_s: float = 5.0
    idle_timeout_s: float = 10.0
    send_timeout_s: float = 5.0
    max_queue_s: float = 10.0
    expect_ttl_s: float = 120.0
    media_burst_s: float = 2.0
    _server: asyncio.Server | None = None
    _expected: dict[uuid.UUID, ExpectedCall] = field(default_factory=dict)
    _connections: set[AudioSocketCall] = field(default_factory=set)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Listen on ``host:port`` (port 0 picks a free one; see ``bound_port``)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._connected, self.host, self.port)
        log.info("AudioSocket server listening on %s:%d", self.host, self.bound_port)

    @property
    def bound_port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.port
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, reason: CallEnd | EndReason | str = EndReason.SERVER_SHUTDOWN) -> None:
        """Stop listening, end every call (records finalised) and close every socket."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self.hangup_all(reason)
        for call in list(self._connections):  # still before their UUID: no record yet
            call.bridge.end_with(reason)
            call.writer.close()  # their read sees the end at once
        if self._connections:
            await asyncio.wait([c.done for c in self._connections], timeout=self.hangup_wait_s)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    def expect(
        self,
        call_uuid: uuid.UUID | str,
        *,
        agent_id: str | None = None,
        call_id: str | None = None,
        context: dict[str, str] | None = None,
    ) -> None:
        """Register what the AudioSocket connection for ``call_uuid`` is (used once)."""
        key = call_uuid if isinstance(call_uuid, uuid.UUID) else uuid.UUID(call_uuid)
        now = time.monotonic()
        for stale in [k for k, e in self._expected.items() if e.expires_at < now]:
            del self._expected[stale]
        self._expected[key] = ExpectedCall(
            agent_id, call_id, dict(context or {}), expires_at=now + self.expect_ttl_s
        )

    def claim(self, call_uuid: uuid.UUID) -> ExpectedCall:
        expected = self._expected.pop(call_uuid, None)
        if expected is None or expected.expires_at < time.monotonic():
            return ExpectedCall()
        return expected

    # ---------------------------------------------------------------- connections

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            # Closing at once: Asterisk's AudioSocket() fails as for a server that is down.
            writer.close()
            return
        call = AudioSocketCall(reader, writer, self)
        self._connections.add(call)
        try:
            await call.run()
        finally:
            self._connections.discard(call)


class AudioSocketCall:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gw: AudioSocketGateway
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.gw = gw
        self.proto = AudioSocketProtocol()
        self.bridge = CallBridge(gw, self, log=log)
        self.done = asyncio.get_running_loop().create_future()
        self._peer = writer.get_extra_info("peername")
        self._closed = False
        self._peer_hung_up = False
        self._malformed: str | None = None  # why the last bytes broke the protocol
        self._caller_samples = 0  # 8 kHz samples received: the caller side's clock
        self._budget = MediaBudget(gw.media_burst_s)
        self._up = StreamResampler(SAMPLE_RATE, 16000)
        self._up_framer = Framer(FRAME_SAMPLES)
        self._down = StreamResampler(16000, SAMPLE_RATE)
        self._down_framer = Framer(_FRAME_SAMPLES_8K)
        self._queue: deque[np.ndarray] = deque()
        self._max_frames = max(1, round(gw.max_queue_s / FRAME_S))
        self._has_audio = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def call_id(self) -> str | None:
        return self.bridge.call_id

    async def run(self) -> None:
        try:
            await self.bridge.run(self._serve)
        finally:
            if not self.done.done():
                self.done.set_result(None)

    async def hangup(self, reason: CallEnd | EndReason | str) -> None:
        await self.bridge.hangup(reason)

    # ---------------------------------------------------------------- the call

    async def _serve(self) -> None:
        while self.proto.call_uuid is None:
            for event in await self._receive(self.gw.uuid_timeout_s, "the UUID message"):
                if isinstance(event, CallId):
                    await self._begin(event.uuid)
                else:
                    self._on_event(event)
            self._end_if_malformed()
            if self.bridge.ended:
                return
        if self.bridge.ended:
            return
        await run_pumps(self.bridge.over, self._read_loop(), self.bridge.pump(self), self._pace())

    async def _begin(self, call_uuid: uuid.UUID) -> None:
        expected = self.gw.claim(call_uuid)
        request = CallRequest(
            carrier="asterisk",
            carrier_call_id=str(call_uuid),
            call_id=expected.call_id,
            agent_id=expected.agent_id,
            context=expected.context,
        )
        if await begin_call(
            self.bridge, self.gw.agents, request, default_agent_id=self.gw.default_agent_id
        ):
            self._budget = MediaBudget(self.gw.media_burst_s)  # real time starts now
            log.info("call %s: AudioSocket %s from %s started", self.call_id, call_uuid, self._peer)

    async def _receive(self, timeout: float, waiting_for: str) -> list[AudioSocketEvent]:
        """The events in the next bytes; ends the call and returns [] if it is over."""
        end = self.bridge.end_with
        try:
            data = await asyncio.wait_for(self.reader.read(_READ_CHUNK), timeout)
        except TimeoutError:
            end(EndReason.TIMEOUT, f"no data for {timeout:g} s (waiting for {waiting_for})")
            return []
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self._closed = True  # Asterisk hangs up by closing the socket
            started = self.proto.call_uuid is not None
            end(EndReason.CALLER_HANGUP if started else EndReason.NEVER_STARTED)
            return []
        try:
            return self.proto.receive_data(data)
        except ProtocolError as exc:
            log.warning("AudioSocket %s: %s", self._peer, exc.message)
            # What came before the bad message is handled first (it may be the UUID
            # that names the call's record); then the call ends.
            self._malformed = exc.message
            return exc.events

    def _end_if_malformed(self) -> None:
        if self._malformed is not None:
            self.bridge.end_with(EndReason.PROTOCOL_ERROR, self._malformed)

    # ---------------------------------------------------------------- caller side

    async def _read_loop(self) -> None:
        while not self.bridge.ended:
            for event in await self._receive(self.gw.idle_timeout_s, "audio"):
                self._on_event(event)
            self._end_if_malformed()

    def _on_event(self, event: AudioSocketEvent) -> None:
        session = self.bridge.session
        if isinstance(event, Audio) and session is not None and not self.bridge.ended:
            if not self._budget.take(len(event.pcm) / 2 / SAMPLE_RATE):
                self.bridge.end_with(EndReason.PROTOCOL_ERROR, self._too_fast())
                return
            pcm8 = np.frombuffer(event.pcm, dtype="<i2").astype(np.int16)
            self.bridge.recorder.add_caller(pcm8, self._caller_samples * 1000 // SAMPLE_RATE)
            self._caller_samples += pcm8.size
            for frame in self._up_framer.push(self._up.push(pcm8)):
                self.bridge.push_caller(frame)
        elif isinstance(event, Dtmf) and session is not None:
            session.push_dtmf(event.digit)
        elif isinstance(event, Hangup):
            self._peer_hung_up = True
            started = session is not None
            self.bridge.end_with(EndReason.CALLER_HANGUP if started else EndReason.NEVER_STARTED)
        elif isinstance(event, PeerError):
            self._peer_hung_up = True
            if event.caller_hung_up:
                started = session is not None
                self.bridge.end_with(
                    EndReason.CALLER_HANGUP if started else EndReason.NEVER_STARTED
                )
            else:
                self.bridge.end_with(EndReason.ERROR, f"audiosocket:asterisk {event.describe()}")

    def _too_fast(self) -> str:
        return (
            f"media faster than real time ({self._budget.ahead_s:.1f} s ahead, "
            f"{self.gw.media_burst_s:g} s allowed)"
        )

    # ---------------------------------------------------------------- MediaSink

    async def play(self, pcm: np.ndarray) -> None:
        for frame in self._down_framer.push(self._down.push(pcm)):
            self._enqueue(frame)

    async def clear(self) -> None:
        # Barge-in: nothing was sent ahead, so dropping the queue stops the agent now.
        self._queue.clear()
        self._down = StreamResampler(16000, SAMPLE_RATE)
        self._down_framer = Framer(_FRAME_SAMPLES_8K)
        self.bridge.recorder.clear_agent()
        self._idle.set()

    async def end_utterance(self, utterance_id: int) -> None:
        # The resampler holds the utterance's last ~100 ms: flush it (and start afresh).
        tail = self._down.flush()
        self._down = StreamResampler(16000, SAMPLE_RATE)
        for frame in [*self._down_framer.push(tail), *self._down_framer.flush()]:
            self._enqueue(frame)

    @property
    def queued_s(self) -> float:
        return len(self._queue) * FRAME_S

    async def wait_for_playout(self) -> None:
        await self._idle.wait()

    def _enqueue(self, frame: np.ndarray) -> None:
        if len(self._queue) >= self._max_frames:
            log.warning("call %s: agent audio queue full; oldest frame dropped", self.call_id)
            self._queue.popleft()
        self._queue.append(frame)
        self._idle.clear()
        self._has_audio.set()

    async def _pace(self) -> None:
        """Send one queued frame every 20 ms, on an absolute schedule (no drift)."""
        loop = asyncio.get_running_loop()
        due: float | None = None
        while True:
            if not self._queue:
                self._idle.set()
                self._has_audio.clear()
                await self._has_audio.wait()
                due = None  # a new run of audio: its clock starts now
                continue
            now = loop.time()
            if due is None or due < now - _MAX_CATCH_UP_S:
                due = now
            if due > now:
                await asyncio.sleep(due - now)
                if not self._queue:  # cleared while waiting
                    continue
            frame = self._queue.popleft()
            self.bridge.recorder.add_agent(frame)
            await self._send(self.proto.audio(frame.astype("<i2").tobytes()))
            due += FRAME_S

    async def _send(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.gw.send_timeout_s)
        except TimeoutError:
            self.bridge.end_with(
                EndReason.TIMEOUT, f"Asterisk did not take data for {self.gw.send_timeout_s:g} s"
            )
            raise CallOver from None
        except (ConnectionError, OSError):
            self._closed = True
            self.bridge.end_with(EndReason.CALLER_HANGUP)
            raise CallOver from None

    # ---------------------------------------------------------------- CallTransport

    async def stop_media(self, end: CallEnd) -> None:
        """Nothing to do: the pumps are over once ``_serve`` returns."""

    async def close(self, end: CallEnd) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            if not self._peer_hung_up and self.proto.call_uuid is not None:
                # The call ends on our side: tell Asterisk to hang up its channel too.
                self.writer.write(self.proto.hangup())
                await asyncio.wait_for(self.writer.drain(), 1.0)
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)
