"""One call's lifecycle between a transport and its engine session, whatever the transport.

The transport pumps the caller's side (audio, DTMF, hang-ups) and implements a
``MediaSink`` and a ``CallTransport``; the bridge does the rest:

- the end: the first reason wins (``end_with``); later ones, from whichever
  side notices the call is over next, are ignored;
- the engine-event ladder (``pump``): observers, then the sink; when the engine
  ends the call, its reason is kept at once, and the sink gets a bounded time
  to play what it has queued (the goodbye) before the call is torn down;
- the finish (``run``): the engine session hung up, the media stopped, the call
  record final (end reason, status, transcript, metrics, stereo recording),
  then the connection closed, so whoever sees the close also sees the record.
  A finish that fails is logged, never silent.
- the screening (``screening``): an outbound call's first seconds are judged for an
  answering machine before the engine hears them (``push_caller`` is where every
  transport hands over caller frames);
- the checkpoints: from the session's start the record names this process as its
  owner and where the recording is being streamed; each transcript entry and turn's
  metrics reach the record as they happen (``checkpoint``). A process killed
  mid-call leaves the call so far, which another process finalizes (api.processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from gateway.bridge.checkpoint import Checkpoints
from gateway.bridge.end_status import end_status
from gateway.bridge.gateway import TransportGateway
from gateway.bridge.screening import CallScreen, render_context
from gateway.bridge.sink import CallTransport, MediaSink
from gateway.calls import CallRecord, CallStatus, Direction, new_call_id, session_fields
from gateway.recording import StereoRecorder
from voice_core.audio.frames import validate_frame
from voice_core.config import AgentConfig
from voice_core.end_reasons import CallEnd, EndReason, as_end
from voice_core.events import (
    AgentAudio,
    AgentReply,
    AgentUtteranceEnd,
    CallEnded,
    ClearAudio,
    DtmfRequested,
    SessionEvent,
    TranscriptFinal,
    TransferRequested,
    TurnMetrics,
)
from voice_core.session import CallSession

# A reason already on the record that the call's own replaces: the media stream knows
# why the call ended better than a carrier's "completed". Any other one is kept.
_OVERRIDABLE = EndReason.CARRIER


class CallBridge:
    def __init__(
        self,
        gateway: TransportGateway,
        io: CallTransport,
        *,
        log: logging.Logger,
        on_event: Callable[[SessionEvent], None] | None = None,
        on_end: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``log`` is the transport's logger; ``on_event`` sees each engine event
        before the sink does; ``on_end`` runs once the record is final."""
        self.gw = gateway
        self.transport = gateway.transport  # its name, for the registry
        self._io = io
        self.log = log
        self.on_event = on_event
        self.on_end = on_end
        self.call_id: str | None = None
        self.session: CallSession | None = None
        self.recorder = StereoRecorder()
        self.checkpoints: Checkpoints | None = None
        self.end: CallEnd | None = None
        self.over = asyncio.Event()  # set when the call should be torn down
        self._transfer: asyncio.Task[None] | None = None  # the agent's transfer_call
        self._handing_over: CallEnd | None = None  # while the carrier moves the call
        self._actions: set[asyncio.Task[None]] = set()  # the agent's DTMF in flight
        self._ended_during_hand_over: CallEnd | None = None
        self._finished = asyncio.Event()  # set once the record is final and all closed
        self.screen: CallScreen | None = None  # an outbound call's answering-machine check

    # ---------------------------------------------------------------- the end

    @property
    def ended(self) -> bool:
        return self.end is not None

    def end_with(self, reason: CallEnd | EndReason | str, detail: str = "") -> None:
        """End the call: keep ``reason`` unless one is already kept, and tear down."""
        end = CallEnd(reason, detail) if isinstance(reason, EndReason) else as_end(reason)
        self._keep(end)
        self.over.set()

    def _keep(self, end: CallEnd) -> None:
        if self.end is None:
            if self._handing_over is not None:
                # The carrier is moving the call: the stream stop it sends reads as the
                # transfer, not as the caller hanging up (kept, should the move fail).
                self._ended_during_hand_over, end = end, self._handing_over
            self.end = end

    async def hangup(self, reason: CallEnd | EndReason | str) -> None:
        """End the call from our side (control plane, shutdown) and wait, bounded, for
        its record to be final. With a session, the engine stops first (its last
        events still reach the sink); without one, the connection closes at once."""
        self.end_with(reason)
        end = as_end(reason)
        if self.session is not None:
            await self.session.hangup(str(end))
        else:
            await self._io.close(self.end or end)
        await self.wait_finished(self.gw.hangup_wait_s)

    async def transfer(
        self,
        to: str,
        hand_over: Callable[[], Awaitable[None]],
        *,
        briefing: str | None = None,
        mode: str = "cold",
    ) -> None:
        """Hand the caller to ``to``: say ``briefing`` (warm), have the carrier move the
        call (``hand_over``), then end our leg as ``transferred:<to>``.

        While the carrier is asked, an end that arrives (the stream stop a carrier sends
        once the call has moved) reads as the transfer, not as the caller hanging up. If
        the carrier refuses, the call goes on (the error is raised), or ends as it would
        have without the transfer.
        """
        if self.ended:
            raise RuntimeError("the call has already ended")
        if briefing and self.session is not None:
            await self.session.say(briefing)
            with contextlib.suppress(TimeoutError):  # heard, not just handed to the carrier
                await asyncio.wait_for(self._wait_sink_playout(), self.gw.drain_timeout_s)
            if self.ended:  # the caller hung up during the briefing: nobody to move
                raise RuntimeError("the call ended during the briefing")
        end = self._handing_over = CallEnd(EndReason.TRANSFERRED, to)
        try:
            await hand_over()
        except BaseException:
            if self.end is end:
                self.end = self._ended_during_hand_over
            raise
        finally:
            self._handing_over = None
        if self.session is not None:
            self.session.note(f"transferred to {to} ({mode})")
        self.log.info("call %s: transferred to %s (%s)", self.call_id, to, mode)
        await self.hangup(end)

    async def _wait_sink_playout(self) -> None:
        wait = getattr(self._io, "wait_for_playout", None)
        if wait is not None:
            await wait()

    def _on_transfer_requested(self, event: TransferRequested) -> None:
        """The agent's transfer_call: run beside the pump (the briefing's audio goes
        through it). A refused transfer is logged and the conversation goes on."""
        actions = self.gw.calls.actions
        call_id = self.call_id
        if actions is None or call_id is None or self._transfer is not None:
            self.log.warning("call %s: transfer to %s not possible here", call_id, event.target)
            return

        async def run() -> None:
            try:
                await self.transfer(
                    event.to,
                    lambda: actions.transfer(call_id, event.to),
                    briefing=event.briefing,
                    mode=event.mode,
                )
            except Exception as exc:
                self.log.warning("call %s: transfer to %s failed: %s", call_id, event.target, exc)
            finally:
                self._transfer = None

        self._transfer = asyncio.create_task(run(), name=f"transfer:{call_id}")

    def _on_dtmf_requested(self, digits: str) -> None:
        """The agent's send_dtmf: the carrier plays the keys, beside the pump."""
        actions, call_id = self.gw.calls.actions, self.call_id
        if actions is None or call_id is None:
            self.log.warning("call %s: cannot send DTMF here", call_id)
            return

        async def run() -> None:
            try:
                await actions.send_dtmf(call_id, digits)
            except Exception as exc:
                self.log.warning("call %s: DTMF %r not sent: %s", call_id, digits, exc)

        task = asyncio.create_task(run(), name=f"dtmf:{call_id}")
        self._actions.add(task)  # kept until done: a bare task may be collected mid-flight
        task.add_done_callback(self._actions.discard)

    async def wait_finished(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), timeout)

    # ---------------------------------------------------------------- the call

    def register(self, call_id: str) -> None:
        """The call has its id: it counts as in progress (and can be hung up) from now."""
        self.call_id = call_id
        self.gw.calls.add(self)

    async def start_session(self, agent: AgentConfig, context: dict[str, Any]) -> CallSession:
        """The call's engine session, started; or, for an outbound call screened for an
        answering machine, created and held (no welcome, no watchdog) until the
        screening says who answered (``gateway.bridge.screening``)."""
        assert self.call_id is not None
        call_id = self.call_id
        record = await self.gw.store.get(call_id)
        screened = (
            self.gw.screens_answering_machines
            and agent.voicemail.detect
            and record is not None
            and record.direction == Direction.OUTBOUND
        )
        # {{name}} in the welcome is the call context's (the agent is loaded without it).
        said = getattr(agent, "welcome_message", None)
        welcome = render_context(said, context)
        if screened or welcome != said:
            agent = agent.model_copy(update={"welcome_message": None if screened else welcome})
        session = self.session = self.gw.engine.new_session(agent, call_id=call_id, context=context)
        # Before the call counts as in progress, its record says who carries it and
        # where its recording grows: what a process that outlives this one needs.
        fields: dict[str, Any] = {"owner": self.gw.calls.process_id}
        try:
            path = self.recorder.stream_to(self.gw.recordings_dir / f"{call_id}.wav")
            fields["recording_path"] = str(path)
        except OSError:
            # The call goes on; its recording is written at the end, if it can be.
            self.log.exception("call %s: the recording cannot be streamed to disk", call_id)
        await self.gw.store.update(call_id, **fields)
        self.checkpoints = Checkpoints(self.gw.store, call_id, lambda: session_fields(session))
        await self.gw.store.set_status(self.call_id, CallStatus.IN_PROGRESS)
        if screened:
            self.screen = CallScreen(
                agent.voicemail,
                session,
                welcome=welcome,
                context=context,
                stt=self.gw.engine.stt,
                vad_aggressiveness=agent.endpointing.vad_aggressiveness,
                hang_up=self.hangup,
                log=self.log,
                call_id=call_id,
            )
            self.log.info("call %s: outbound, screening for an answering machine", call_id)
        else:
            await session.start()
        return session

    def push_caller(self, frame: np.ndarray) -> None:
        """One caller frame (20 ms int16 at 16 kHz): to the screening while it judges
        who answered, else to the engine. Raises FrameError if malformed."""
        if self.ended or self.session is None:
            return
        screen = self.screen
        if screen is not None and screen.active:
            screen.push(validate_frame(frame))
        else:
            self.session.push_audio(frame)

    async def run(self, serve: Callable[[], Awaitable[None]]) -> None:
        """Run the transport's ``serve`` (the call itself), then finish the call,
        whatever happened. A bug in one call never reaches the server."""
        try:
            await serve()
        except Exception as exc:
            tag = self.gw.error_tag
            self.log.exception("call %s: %s call failed", self.call_id or "-", tag)
            self.end_with(EndReason.ERROR, f"{tag}:{type(exc).__name__}")
        finally:
            try:
                await asyncio.shield(self._finish())
            except Exception:
                # Never silent: a call whose record could not be finalized must show up.
                self.log.exception("call %s: finalizing the call record failed", self.call_id)
            finally:
                self._finished.set()

    async def pump(self, sink: MediaSink) -> None:
        """Engine events -> observers and the sink, until the engine ends the call."""
        assert self.session is not None
        call_id = self.call_id or ""
        async for event in self.session.events():
            self.gw.observe(call_id, event)
            if self.checkpoints is not None and isinstance(
                event, TranscriptFinal | AgentReply | TurnMetrics
            ):
                self.checkpoints.mark()
            if self.on_event is not None:
                self.on_event(event)
            if isinstance(event, AgentAudio):
                await sink.play(event.pcm)
            elif isinstance(event, ClearAudio):
                await sink.clear()
            elif isinstance(event, AgentUtteranceEnd) and not event.interrupted:
                await sink.end_utterance(event.utterance_id)
            elif isinstance(event, TurnMetrics):
                self.log.info("call %s: turn %d stages %s", call_id, event.turn, event.stages_ms)
            elif isinstance(event, TransferRequested):
                self._on_transfer_requested(event)
            elif isinstance(event, DtmfRequested):
                self._on_dtmf_requested(event.digits)
            elif isinstance(event, CallEnded):
                self._keep(event.end)
                # The agent's last words are still queued: let them play, bounded.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sink.wait_for_playout(), self.gw.drain_timeout_s)
                self.over.set()
                return

    # ---------------------------------------------------------------- the finish

    async def _finish(self) -> None:
        end = self.end or CallEnd(EndReason.ENDED)
        if self.screen is not None:
            await self.screen.aclose()
            end = self.screen.end_of(end)
        text, status = str(end), end_status(end)
        if self.session is not None:
            await self.session.hangup(text)
        await self._io.stop_media(end)
        try:
            if self.call_id is None:
                # Nothing identified the call: keep a record of the attempt.
                record = await self.gw.store.create(
                    CallRecord(id=new_call_id(), agent_id=None, direction=Direction.INBOUND)
                )
                self.call_id = record.id
            else:
                self.gw.calls.remove(self)
            await self._finalize_record(text, status)
        finally:
            await self._io.close(end)
            if self.on_end is not None:
                try:
                    await self.on_end()
                except Exception:
                    self.log.exception("call %s: end hook failed", self.call_id)
        level = logging.WARNING if status == CallStatus.FAILED else logging.INFO
        self.log.log(level, "call %s ended (%s): %s", self.call_id, status, text)

    async def _finalize_record(self, reason: str, status: CallStatus) -> None:
        assert self.call_id is not None
        store = self.gw.store
        fields: dict[str, Any] = {"end_reason": reason}
        if self.checkpoints is not None:
            await self.checkpoints.close()  # none may land after the final record
        if self.session is not None:
            fields.update(session_fields(self.session))
            if self.recorder.streaming:
                path = await asyncio.to_thread(self.recorder.finish)
            else:
                path = self.gw.recordings_dir / f"{self.call_id}.wav"
                await asyncio.to_thread(self.recorder.save, path)
            fields["recording_path"] = str(path)
        record = await store.get(self.call_id)
        if record is None:
            return
        if record.end_reason and CallEnd.parse(record.end_reason).reason is not _OVERRIDABLE:
            fields.pop("end_reason")
        await self._record_media_stats()
        await store.update(self.call_id, **fields)
        await store.set_status(self.call_id, status, reason=reason)

    async def _record_media_stats(self) -> None:
        """The transport's count of messages its line lost, reordered or repeated
        (``media_stats``, where its protocol numbers them), onto the record.

        A separate write, so a store that keeps no such field yet loses only these
        counters (logged), never the transcript and status written next."""
        stats = getattr(self._io, "media_stats", None)
        if stats is None or self.call_id is None:
            return
        try:
            await self.gw.store.update(self.call_id, media_stats=dict(stats))
        except AttributeError:
            self.log.warning(
                "call %s: the call store keeps no media_stats: %s", self.call_id, stats
            )
