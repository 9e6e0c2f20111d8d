"""One WebRTC call: an aiortc peer connection bridged to a ``CallSession``.

``WebRtcGateway.answer`` takes an SDP offer and returns the answer; the call then
runs as a task of its own: it waits for the peer to connect, starts the engine
session, pumps audio both ways (and live events on the data channel, if the
peer opened one), and when anything ends the call (the caller hangs up or
goes away, the agent ends it, the peer connection fails, the server shuts
down) it closes the peer and finalizes the call record: status, reason,
transcript, per-turn metrics and a stereo recording — as the phone gateway does.

Every error is caught per call: one broken peer never reaches another call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from gateway.calls import CallRecord, CallStatus, CallStore, session_fields
from gateway.conversation import LiveEvents
from gateway.recording import RECORDING_RATE, StereoRecorder
from gateway.webrtc.ice import rtc_configuration
from gateway.webrtc.media import PTIME_S, AgentAudioTrack, CallerAudio
from gateway.webrtc.sdp import SdpError, check_offer, drop_mdns_candidates
from voice_core.audio import FrameError
from voice_core.audio.resample import StreamResampler
from voice_core.config import AgentConfig
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

RecordFactory = Callable[[], Awaitable[CallRecord]]
EndHook = Callable[["WebRtcCall"], Awaitable[None]]
# Sees every engine event of every call, (call_id, event): live monitoring. Must not
# block (it queues and returns).
EventObserver = Callable[[str, SessionEvent], None]


class NotAccepting(RuntimeError):
    """This process is draining or runs without the media role: call another one."""


@dataclass
class WebRtcGateway:
    """What every WebRTC call shares.

    Limits, and why:
    - ``gather_timeout_s``: answers are not trickled (one HTTP round trip, and the
      WhatsApp API takes a complete SDP), so we wait for gathering; host-only
      gathering takes milliseconds, a dead STUN/TURN server must not hold the request.
    - ``connect_timeout_s``: a browser that got its answer but never connects (a
      firewall, a closed tab) must not hold a call record open.
    - ``drain_timeout_s``: when the agent hangs up, its last words are still
      queued on the track; wait this long so the goodbye is heard.
    """

    engine: VoiceEngine
    store: CallStore
    recordings_dir: Path
    ice_servers: Sequence[str] = ()
    ice_username: str | None = None
    ice_credential: str | None = None
    gather_timeout_s: float = 5.0
    connect_timeout_s: float = 20.0
    drain_timeout_s: float = 3.0
    active: dict[str, WebRtcCall] = field(default_factory=dict)
    observers: list[EventObserver] = field(default_factory=list)
    accepting: bool = True  # False while draining or without the media role
    # Calls being set up (before their record exists) also hold a peer connection.
    _pending: set[WebRtcCall] = field(default_factory=set)

    async def answer(
        self,
        offer_sdp: str,
        *,
        agent: AgentConfig,
        make_record: RecordFactory,
        context: dict[str, Any] | None = None,
        on_end: EndHook | None = None,
        on_answered: Callable[[WebRtcCall], Awaitable[None]] | None = None,
    ) -> tuple[WebRtcCall, str]:
        """Answer ``offer_sdp``: (the call, SDP answer). Raises ``SdpError`` for an
        offer we cannot answer, in which case nothing is left running and no
        record was created. ``make_record`` runs only once the answer exists."""
        if not self.accepting:
            raise NotAccepting("not taking new calls (draining)")
        check_offer(offer_sdp)
        call = WebRtcCall(self, agent, context or {}, on_end)
        self._pending.add(call)
        try:
            answer_sdp = await call.negotiate(offer_sdp)
            call.record = await make_record()
        except BaseException:
            self._pending.discard(call)
            await call.close_peer()
            raise
        self._pending.discard(call)
        call.call_id = call.record.id
        self.active[call.call_id] = call
        if on_answered is not None:
            await on_answered(call)
        call.start()
        return call, answer_sdp

    async def offer(
        self,
        *,
        agent: AgentConfig,
        context: dict[str, Any] | None = None,
        on_end: EndHook | None = None,
    ) -> tuple[WebRtcCall, str]:
        """Start a call of our own (a business-initiated WhatsApp call): (the call, its
        SDP offer: audio/Opus, candidates gathered). The call stays pending, with no
        record and nothing running, until ``connect_answer``; ``drop_pending`` gives
        it up. Raises ``SdpError`` if gathering does not finish."""
        call = WebRtcCall(self, agent, context or {}, on_end)
        self._pending.add(call)
        try:
            offer_sdp = await call.make_offer()
        except BaseException:
            await self.drop_pending(call)
            raise
        return call, offer_sdp

    async def connect_answer(self, call: WebRtcCall, answer_sdp: str, call_id: str) -> None:
        """Apply the callee's answer to a call from ``offer`` and run it as the record
        ``call_id`` (connect deadline, session, pumps, finalizing, as for ``answer``).
        Raises ``SdpError`` for an unusable answer; the call is then dropped."""
        try:
            await call.accept_answer(answer_sdp)
        except BaseException:
            await self.drop_pending(call)
            raise
        self._pending.discard(call)
        call.call_id = call_id
        call.answered_at = time.monotonic()
        self.active[call_id] = call
        call.start()

    async def drop_pending(self, call: WebRtcCall) -> None:
        self._pending.discard(call)
        await call.close_peer()

    async def hangup(self, call_id: str, reason: str) -> bool:
        call = self.active.get(call_id)
        if call is None:
            return False
        await call.hangup(reason)
        return True

    async def close_all(self, reason: str = "server_shutdown") -> None:
        """Server shutdown: end every call (records finalized) and close every peer."""
        calls = list(self.active.values())
        for call in calls:
            call.end(reason, CallStatus.COMPLETED)
        await asyncio.gather(*(c.wait_finished(10.0) for c in calls), return_exceptions=True)
        for call in list(self._pending):
            await call.close_peer()


class WebRtcCall:
    def __init__(
        self,
        gateway: WebRtcGateway,
        agent: AgentConfig,
        context: dict[str, Any],
        on_end: EndHook | None,
    ) -> None:
        self.gw = gateway
        self.agent = agent
        self.context = context
        self.on_end = on_end
        self.call_id = ""
        self.carrier_call_id: str | None = None  # e.g. the WhatsApp call id
        self.record: CallRecord | None = None
        self.pc = RTCPeerConnection(
            rtc_configuration(gateway.ice_servers, gateway.ice_username, gateway.ice_credential)
        )
        self.agent_track = AgentAudioTrack()
        self.session: CallSession | None = None
        self.recorder = StereoRecorder()
        self.channel: RTCDataChannel | None = None
        self.live = LiveEvents()
        self.end_reason: str | None = None
        self.end_status: CallStatus | None = None
        self.answered_at = time.monotonic()
        self.connected_at: float | None = None
        self._caller_audio = CallerAudio()
        self._rec_up = StreamResampler(16000, RECORDING_RATE)
        self._rec_down = StreamResampler(16000, RECORDING_RATE)
        self._connected = asyncio.Event()
        self._ended = asyncio.Event()
        self._finished = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._wire_peer()

    # ---------------------------------------------------------------- signalling

    def _wire_peer(self) -> None:
        pc = self.pc

        @pc.on("connectionstatechange")
        def _state() -> None:
            state = pc.connectionState
            if state == "connected":
                self.connected_at = time.monotonic()
                self._connected.set()
            elif state == "failed":
                self.end("peer_connection_failed", CallStatus.FAILED)
            elif state == "closed":
                self.end("peer_connection_closed", CallStatus.COMPLETED)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._caller_loop(track), "caller-audio")

        @pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            self.channel = channel

            @channel.on("open")
            def _open() -> None:
                self._send_live(self.live.started(self.call_id))

            # aiortc announces a remote channel once it is already open ("open" never fires).
            if channel.readyState == "open":
                self._send_live(self.live.started(self.call_id))

            @channel.on("message")
            def _message(message: object) -> None:
                self._on_channel_message(message)

    async def negotiate(self, offer_sdp: str) -> str:
        offer = RTCSessionDescription(sdp=drop_mdns_candidates(offer_sdp), type="offer")
        try:
            await self.pc.setRemoteDescription(offer)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            # aiortc's own parser found what our quick checks did not.
            raise SdpError(f"unusable offer: {exc or type(exc).__name__}") from exc
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise SdpError("offer has no audio section (m=audio)")
        # The offer's audio transceiver carries the agent's voice back.
        audio[0].sender.replaceTrack(self.agent_track)
        audio[0].direction = "sendrecv"
        answer = await self.pc.createAnswer()
        try:
            # aiortc gathers candidates inside setLocalDescription.
            await asyncio.wait_for(self.pc.setLocalDescription(answer), self.gw.gather_timeout_s)
        except TimeoutError:
            raise SdpError(
                f"ICE gathering did not finish within {self.gw.gather_timeout_s:g} s"
            ) from None
        return self.pc.localDescription.sdp

    async def make_offer(self) -> str:
        """Our offer for an outbound call: one sendrecv audio section, Opus only (what
        WhatsApp takes), carrying the agent's voice."""
        transceiver = self.pc.addTransceiver(self.agent_track, direction="sendrecv")
        opus = [
            codec
            for codec in RTCRtpSender.getCapabilities("audio").codecs
            if codec.mimeType.lower() == "audio/opus"
        ]
        transceiver.setCodecPreferences(opus)
        offer = await self.pc.createOffer()
        try:
            await asyncio.wait_for(self.pc.setLocalDescription(offer), self.gw.gather_timeout_s)
        except TimeoutError:
            raise SdpError(
                f"ICE gathering did not finish within {self.gw.gather_timeout_s:g} s"
            ) from None
        return self.pc.localDescription.sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        try:
            # The same checks an offer gets (audio, Opus, fingerprint, ICE credentials).
            check_offer(answer_sdp)
        except SdpError as exc:
            raise SdpError(str(exc).replace("offer", "answer")) from None
        answer = RTCSessionDescription(sdp=drop_mdns_candidates(answer_sdp), type="answer")
        try:
            await self.pc.setRemoteDescription(answer)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise SdpError(f"unusable answer: {exc or type(exc).__name__}") from exc

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"{self.call_id}:webrtc")

    def end(self, reason: str, status: CallStatus) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self.end_status = status
        self._ended.set()

    async def hangup(self, reason: str) -> None:
        self.end(reason, CallStatus.COMPLETED)
        await self.wait_finished(10.0)

    async def wait_finished(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), timeout)

    async def _run(self) -> None:
        try:
            await self._serve()
        except Exception as exc:  # a bug in one call must not reach the server
            log.exception("call %s: WebRTC call failed", self.call_id)
            self.end(f"error:webrtc:{type(exc).__name__}", CallStatus.FAILED)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._finish())

    async def _serve(self) -> None:
        connected = asyncio.ensure_future(self._connected.wait())
        ended = asyncio.ensure_future(self._ended.wait())
        await asyncio.wait(
            {connected, ended},
            timeout=self.gw.connect_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for f in (connected, ended):
            f.cancel()
        if self.end_reason is not None:
            return
        if not self._connected.is_set():
            self.end(
                f"timeout: peer did not connect within {self.gw.connect_timeout_s:g} s",
                CallStatus.FAILED,
            )
            return
        self.session = self.gw.engine.new_session(
            self.agent, call_id=self.call_id, context=self.context
        )
        await self.gw.store.set_status(self.call_id, CallStatus.IN_PROGRESS)
        await self.session.start()
        self._spawn(self._event_loop(self.session), "agent-audio")
        log.info(
            "call %s: WebRTC connected in %.0f ms",
            self.call_id,
            ((self.connected_at or 0) - self.answered_at) * 1000,
        )
        await self._ended.wait()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(self._guard(coro, name), name=f"{self.call_id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, coro: Any, name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("call %s: %s failed", self.call_id, name)
            self.end(f"error:webrtc:{name}:{type(exc).__name__}", CallStatus.FAILED)

    # ---------------------------------------------------------------- pumps

    async def _caller_loop(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                self.end("caller_hangup", CallStatus.COMPLETED)
                return
            session = self.session
            if session is None:
                continue  # media before the session starts (a few ms): nothing to hear yet
            for pcm in self._caller_audio.push(frame):  # type: ignore[arg-type]
                try:
                    session.push_audio(pcm)
                except FrameError as exc:
                    self.end(f"protocol_error: {exc}", CallStatus.FAILED)
                    return
                self.recorder.add_caller(self._rec_up.push(pcm))

    async def _event_loop(self, session: CallSession) -> None:
        async for event in session.events():
            for observer in self.gw.observers:
                try:
                    observer(self.call_id, event)
                except Exception:  # a monitoring bug must not end the call
                    log.exception("call %s: event observer failed", self.call_id)
            self._send_live(self.live.encode(event))
            await self._on_session_event(event)
            if isinstance(event, CallEnded):
                return

    async def _on_session_event(self, event: SessionEvent) -> None:
        if isinstance(event, AgentAudio):
            self.agent_track.push(event.pcm)
            self.recorder.add_agent(self._rec_down.push(event.pcm))
        elif isinstance(event, ClearAudio):
            self.agent_track.clear()
            self._rec_down = StreamResampler(16000, RECORDING_RATE)
            self.recorder.clear_agent()
        elif isinstance(event, AgentUtteranceEnd) and not event.interrupted:
            self.agent_track.end_utterance()
        elif isinstance(event, TurnMetrics):
            log.info("call %s: turn %d stages %s", self.call_id, event.turn, event.stages_ms)
        elif isinstance(event, CallEnded):
            status = CallStatus.FAILED if event.reason.startswith("error") else CallStatus.COMPLETED
            if self.end_reason is None:
                # The agent ended the call: let its last words play out first.
                queued_s = self.agent_track.queued_frames * PTIME_S
                await asyncio.sleep(min(queued_s + 0.1, self.gw.drain_timeout_s))
            self.end(event.reason, status)

    def _on_channel_message(self, message: object) -> None:
        try:
            data = json.loads(message) if isinstance(message, str) else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self._send_live([{"type": "error", "detail": "messages must be JSON objects"}])
            return
        kind = data.get("type")
        if kind == "hangup":
            self.end("caller_hangup", CallStatus.COMPLETED)
        elif kind == "dtmf" and self.session is not None:
            try:
                self.session.push_dtmf(str(data.get("digit", "")))
            except ValueError as exc:
                self._send_live([{"type": "error", "detail": str(exc)}])
        else:
            self._send_live([{"type": "error", "detail": f"unknown message type {kind!r}"}])

    def _send_live(self, messages: list[dict[str, Any]]) -> None:
        channel = self.channel
        if channel is None or channel.readyState != "open":
            return
        for message in messages:
            with contextlib.suppress(Exception):  # a closing channel must not end the call
                channel.send(json.dumps(message))

    # ---------------------------------------------------------------- the end

    async def close_peer(self) -> None:
        with contextlib.suppress(Exception):
            self.agent_track.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), 5.0)

    async def _finish(self) -> None:
        reason = self.end_reason or "ended"
        status = self.end_status or CallStatus.COMPLETED
        if self.session is not None:
            await self.session.hangup(reason)
        # Say goodbye on the data channel before the peer goes away.
        self._send_live([*self.live._to("ended"), {"type": "call_ended", "reason": reason}])
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.close_peer()
        self.gw.active.pop(self.call_id, None)
        try:
            await self._finalize_record(reason, status)
        finally:
            if self.on_end is not None:
                try:
                    await self.on_end(self)
                except Exception:
                    log.exception("call %s: end hook failed", self.call_id)
            self._finished.set()
        level = logging.WARNING if status == CallStatus.FAILED else logging.INFO
        log.log(level, "call %s ended (%s): %s", self.call_id, status, reason)

    async def _finalize_record(self, reason: str, status: CallStatus) -> None:
        store = self.gw.store
        fields: dict[str, Any] = {"end_reason": reason}
        if self.session is not None:
            fields.update(session_fields(self.session))
            path = self.gw.recordings_dir / f"{self.call_id}.wav"
            await asyncio.to_thread(self.recorder.save, path)
            fields["recording_path"] = str(path)
        record = await store.get(self.call_id)
        if record is None:
            return
        if record.end_reason:
            fields.pop("end_reason")
        await store.update(self.call_id, **fields)
        await store.set_status(self.call_id, status, reason=reason)
