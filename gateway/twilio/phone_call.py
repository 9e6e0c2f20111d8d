"""The WebSocket side of a phone call: pumps between the carrier's socket, the
sans-I/O ``MediaStreamProtocol`` and a ``CallSession``.

Each connection is one ``PhoneCall``. Everything that can go wrong with the
socket or the carrier's messages ends that call (with a logged reason and a
final status on its record) and nothing else: the handler catches its own
errors and every wait on the peer has a timeout, so a half-closed socket cannot
hold a call (or its engine session) open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.agents import AgentDirectory
from gateway.calls import (
    CallRecord,
    CallStatus,
    CallStore,
    Direction,
    new_call_id,
    session_fields,
)
from gateway.recording import RECORDING_RATE, StereoRecorder
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
from voice_core.engine import VoiceEngine
from voice_core.events import (
    AgentAudio,
    AgentUtteranceEnd,
    CallEnded,
    ClearAudio,
    SessionEvent,
    TurnMetrics,
)
from voice_core.session import CallSession

log = logging.getLogger(__name__)

# customParameters the gateway itself reads; any others become call context.
_RESERVED_PARAMS = {"agent_id", "call_id"}
# Sees every engine event of every call, (call_id, event): live monitoring. Called in
# the call's write loop, so it must not block (it queues and returns).
EventObserver = Callable[[str, SessionEvent], None]
# WebSocket close codes (RFC 6455): 1000 normal, 1008 policy violation (bad messages).
_CLOSE_NORMAL = 1000
_CLOSE_PROTOCOL = 1008


@dataclass
class PhoneGateway:
    """What every phone call shares: the engine, the stores and the limits.

    Limits, and why:
    - ``start_timeout_s``: a carrier sends ``start`` right after connecting; a
      socket that says nothing for this long is not a call.
    - ``idle_timeout_s``: carriers send a media message every 20 ms for the
      whole call, even in silence, so this much quiet means the line is dead
      (or half-closed) and the call is ended rather than held open.
    - ``send_timeout_s``: a peer that stops reading fills the TCP buffers and
      blocks sends; past this the call is ended.
    - ``mark_drain_timeout_s``: when the agent hangs up, its last words are
      still in the carrier's buffer; wait this long for their mark to come back
      before closing, so the goodbye is heard.
    """

    engine: VoiceEngine
    store: CallStore
    agents: AgentDirectory
    recordings_dir: Path
    start_timeout_s: float = 10.0
    idle_timeout_s: float = 10.0
    send_timeout_s: float = 5.0
    mark_drain_timeout_s: float = 3.0
    active: dict[str, PhoneCall] = field(default_factory=dict)
    observers: list[EventObserver] = field(default_factory=list)
    # False while draining (or in a process without the media role): new streams are
    # refused with 1013 "try again later" so the carrier's retry lands elsewhere.
    accepting: bool = True

    def observe(self, call_id: str, event: SessionEvent) -> None:
        for observer in self.observers:
            try:
                observer(call_id, event)
            except Exception:  # a monitoring bug must not end the call
                log.exception("call %s: event observer failed", call_id)

    async def handle(self, websocket: WebSocket) -> None:
        if not self.accepting:
            await websocket.close(code=1013, reason="not taking new calls (draining)")
            return
        await PhoneCall(websocket, self).run()

    async def hangup_all(self, reason: str) -> None:
        for call in list(self.active.values()):
            await call.hangup(reason)


class _CallOver(Exception):
    """Raised inside the pumps once the call's end reason is set."""


class PhoneCall:
    def __init__(self, websocket: WebSocket, gateway: PhoneGateway) -> None:
        self.ws = websocket
        self.gw = gateway
        self.proto = MediaStreamProtocol()
        self.call_id: str | None = None
        self.session: CallSession | None = None
        self.recorder: StereoRecorder | None = None
        self.end_reason: str | None = None
        self.end_status: CallStatus | None = None
        self.marks_echoed: list[str] = []
        self._protocol_error = False
        self._marks_drained = asyncio.Event()
        self._marks_drained.set()
        # One resampler and framer per direction: they keep filter state between frames.
        self._up = StreamResampler(RECORDING_RATE, 16000)
        self._up_framer = Framer(FRAME_SAMPLES)
        self._down = StreamResampler(16000, RECORDING_RATE)
        self._down_framer = Framer(FRAME_BYTES)
        self._closed = False
        self._done = asyncio.Event()  # set once the record is final and the socket closed

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        await self.ws.accept()
        try:
            await self._serve()
        except Exception as exc:  # a bug in one call must not reach the server
            log.exception("call %s: media stream handler failed", self.call_id or "-")
            self._set_end(f"error:gateway:{type(exc).__name__}", CallStatus.FAILED)
        finally:
            try:
                await asyncio.shield(self._finish())
            except Exception:
                # Never silent: a call whose record could not be finalized must show up.
                log.exception("call %s: finalizing the call record failed", self.call_id or "-")
            finally:
                self._done.set()

    async def hangup(self, reason: str, wait_s: float = 5.0) -> None:
        """End the call from our side (control plane, shutdown).

        With a session, the pumps end on its CallEnded and ``_finish`` writes the
        record before it closes the socket: closing first would let the carrier
        report "completed" (and a poller see the call final) before our end reason
        is written. Waits (bounded) for the record to be final.
        """
        self._set_end(reason, CallStatus.COMPLETED)
        if self.session is None:
            await self._close(_CLOSE_NORMAL, reason)
        else:
            await self.session.hangup(reason)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), wait_s)

    def _set_end(self, reason: str, status: CallStatus) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self.end_status = status

    async def _serve(self) -> None:
        while self.proto.start is None:
            for event in await self._receive(self.gw.start_timeout_s, "start"):
                if isinstance(event, Start):
                    await self._begin(event)
            if self.end_reason is not None:
                return
        assert self.session is not None
        reader = asyncio.create_task(self._read_loop(), name=f"{self.call_id}:ws-read")
        writer = asyncio.create_task(self._write_loop(), name=f"{self.call_id}:ws-write")
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            for task in (reader, writer):
                with contextlib.suppress(asyncio.CancelledError, _CallOver):
                    await task
            # A task that died of a bug: surface it to run()'s handler.
            for task in (reader, writer):
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    if not isinstance(exc, _CallOver):
                        raise exc  # type: ignore[misc]

    async def _receive(self, timeout: float, waiting_for: str) -> list[StreamEvent]:
        """The next message's events; sets the end reason and returns [] if the call is over."""
        try:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
        except TimeoutError:
            self._set_end(
                f"timeout: no message for {timeout:g} s (waiting for {waiting_for})",
                CallStatus.FAILED,
            )
            return []
        except (WebSocketDisconnect, RuntimeError):
            message = {"type": "websocket.disconnect"}
        if message["type"] == "websocket.disconnect":
            self._closed = True
            if self.proto.start is None:
                self._set_end("caller_disconnected before 'start'", CallStatus.FAILED)
            else:
                self._set_end("caller_disconnected without 'stop'", CallStatus.COMPLETED)
            return []
        try:
            if message.get("text") is not None:
                return self.proto.receive_text(message["text"])
            return self.proto.receive_bytes(message.get("bytes") or b"")
        except ProtocolError as exc:
            self._protocol_error = True
            self._set_end(f"protocol_error: {exc.message}", CallStatus.FAILED)
            return []

    async def _begin(self, start: Start) -> None:
        store, params = self.gw.store, start.custom_parameters
        call_id = params.get("call_id") or new_call_id()
        self.call_id = call_id
        record = await store.get(call_id)
        agent_id = (
            params.get("agent_id")
            or (record.agent_id if record else None)
            or self.gw.agents.default_agent_id
        )
        agent = await self.gw.agents.get(agent_id) if agent_id else None
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
            self._set_end(f"call {call_id} already ended ({record.status})", CallStatus.FAILED)
            self.call_id = None  # never touch a finished record
            return
        if agent is None:
            self._set_end(f"unknown agent_id {agent_id!r}", CallStatus.FAILED)
            return
        context = {**record.context}
        context.update({k: v for k, v in params.items() if k not in _RESERVED_PARAMS})
        self.session = self.gw.engine.new_session(agent, call_id=call_id, context=context)
        self.recorder = StereoRecorder()
        self.gw.active[call_id] = self
        await store.set_status(call_id, CallStatus.IN_PROGRESS)
        await self.session.start()
        log.info("call %s: stream %s started, agent %s", call_id, start.stream_sid, agent_id)

    # ---------------------------------------------------------------- pumps

    async def _read_loop(self) -> None:
        assert self.session is not None
        while self.end_reason is None:
            for event in await self._receive(self.gw.idle_timeout_s, "media"):
                if isinstance(event, Media):
                    if event.track == "inbound":
                        self._on_caller_audio(event)
                elif isinstance(event, Dtmf):
                    self.session.push_dtmf(event.digit)
                elif isinstance(event, Mark):
                    self._on_mark(event)
                elif isinstance(event, Stop):
                    self._set_end("caller_hangup", CallStatus.COMPLETED)

    def _on_caller_audio(self, media: Media) -> None:
        assert self.session is not None and self.recorder is not None
        pcm8 = mulaw.decode(media.payload)
        self.recorder.add_caller(pcm8, media.timestamp)
        for frame in self._up_framer.push(self._up.push(pcm8)):
            self.session.push_audio(frame)

    def _on_mark(self, mark: Mark) -> None:
        if not mark.known:
            log.warning("call %s: carrier echoed a mark we never sent: %r", self.call_id, mark.name)
            return
        self.marks_echoed.append(mark.name)
        if not self.proto.pending_marks:
            self._marks_drained.set()

    async def _write_loop(self) -> None:
        assert self.session is not None and self.recorder is not None
        async for event in self.session.events():
            if self.gw.observers:
                self.gw.observe(self.call_id or "", event)
            if isinstance(event, AgentAudio):
                for frame in self._down_framer.push(self._down.push(event.pcm)):
                    await self._send_agent_frame(frame)
            elif isinstance(event, ClearAudio):
                # What the carrier buffered will not be heard; start the next utterance clean.
                self._down = StreamResampler(16000, RECORDING_RATE)
                self._down_framer = Framer(FRAME_BYTES)
                self.recorder.clear_agent()
                await self._send(self.proto.clear())
            elif isinstance(event, AgentUtteranceEnd) and not event.interrupted:
                for frame in self._down_framer.flush():
                    await self._send_agent_frame(frame)
                self._marks_drained.clear()
                await self._send(self.proto.mark(f"utterance-{event.utterance_id}"))
            elif isinstance(event, TurnMetrics):
                log.info("call %s: turn %d stages %s", self.call_id, event.turn, event.stages_ms)
            elif isinstance(event, CallEnded):
                status = (
                    CallStatus.FAILED if event.reason.startswith("error") else CallStatus.COMPLETED
                )
                self._set_end(event.reason, status)
                if self.proto.pending_marks:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._marks_drained.wait(), self.gw.mark_drain_timeout_s
                        )
                return

    async def _send_agent_frame(self, frame: Any) -> None:
        assert self.recorder is not None
        self.recorder.add_agent(frame)
        for message in self.proto.media(mulaw.encode(frame)):
            await self._send(message)

    async def _send(self, message: str) -> None:
        try:
            await asyncio.wait_for(self.ws.send_text(message), self.gw.send_timeout_s)
        except TimeoutError:
            self._set_end(
                f"timeout: carrier did not take a message for {self.gw.send_timeout_s:g} s",
                CallStatus.FAILED,
            )
            raise _CallOver from None
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._closed = True
            self._set_end("caller_disconnected without 'stop'", CallStatus.COMPLETED)
            raise _CallOver from None

    # ---------------------------------------------------------------- the end

    async def _close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        # Close reasons are limited to 123 bytes by RFC 6455.
        reason_bytes = reason.encode()[:120].decode(errors="ignore")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code, reason_bytes), 2.0)

    async def _finish(self) -> None:
        # Order matters: the record is final (recording saved) before the socket is
        # closed, so whoever sees the close also sees the finished record.
        reason = self.end_reason or "ended"
        status = self.end_status or CallStatus.COMPLETED
        if self.session is not None:
            await self.session.hangup(reason)
        store = self.gw.store
        if self.call_id is None:
            # Nothing identified the call (no valid 'start'): keep a record of the attempt.
            record = await store.create(
                CallRecord(id=new_call_id(), agent_id=None, direction=Direction.INBOUND)
            )
            self.call_id = record.id
        else:
            self.gw.active.pop(self.call_id, None)
        fields: dict[str, Any] = {"end_reason": reason}
        if self.session is not None:
            fields.update(session_fields(self.session))
        if self.recorder is not None:
            path = self.gw.recordings_dir / f"{self.call_id}.wav"
            await asyncio.to_thread(self.recorder.save, path)
            fields["recording_path"] = str(path)
        record = await store.get(self.call_id)
        if record is not None:
            # The stream knows why the call ended better than a carrier's "completed".
            if record.end_reason and not record.end_reason.startswith("carrier:"):
                fields.pop("end_reason")
            await store.update(self.call_id, **fields)
            await store.set_status(self.call_id, status, reason=reason)
        await self._close(_CLOSE_PROTOCOL if self._protocol_error else _CLOSE_NORMAL, reason)
        level = logging.WARNING if status == CallStatus.FAILED else logging.INFO
        log.log(level, "call %s ended (%s): %s", self.call_id, status, reason)
