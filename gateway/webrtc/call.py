"""One WebRTC call: an aiortc peer connection bridged to a ``CallSession``.

``WebRtcGateway.answer`` takes an SDP offer and returns the answer; the call then
runs as a task of its own: it waits for the peer to connect, starts the engine
session, pumps audio both ways (and live events on the data channel, if the
peer opened one), and when anything ends the call (the caller hangs up or
goes away, the agent ends it, the peer connection fails, the server shuts
down) the shared ``CallBridge`` closes the peer and finalizes the call record:
status, reason, transcript, per-turn metrics and a stereo recording.

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
from typing import Any, ClassVar

import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from gateway.bridge import CallBridge, TransportGateway
from gateway.calls import CallRecord
from gateway.conversation import LiveEvents
from gateway.recording import RECORDING_RATE
from gateway.webrtc.ice import rtc_configuration
from gateway.webrtc.media import PTIME_S, AgentAudioTrack, CallerAudio
from gateway.webrtc.sdp import SdpError, check_offer, drop_mdns_candidates
from voice_core.audio import FrameError
from voice_core.audio.resample import StreamResampler
from voice_core.config import AgentConfig
from voice_core.end_reasons import CallEnd, EndReason
from voice_core.events import CallEnded, SessionEvent

log = logging.getLogger(__name__)

RecordFactory = Callable[[], Awaitable[CallRecord]]
EndHook = Callable[["WebRtcCall"], Awaitable[None]]
# The browser's jitter buffer still holds a little audio once our track's queue is empty.
_JITTER_S = 0.1


class NotAccepting(RuntimeError):
    """This process is draining or runs without the media role: call another one."""


@dataclass(kw_only=True)
class WebRtcGateway(TransportGateway):
    """What every WebRTC call shares.

    Limits, and why:
    - ``gather_timeout_s``: answers are not trickled (one HTTP round trip, and the
      WhatsApp API takes a complete SDP), so we wait for gathering; host-only
      gathering takes milliseconds, a dead STUN/TURN server must not hold the request.
    - ``connect_timeout_s``: a browser that got its answer but never connects (a
      firewall, a closed tab) must not hold a call record open.
    - ``drain_timeout_s`` (shared): the agent's last words are still queued on
      the track; this long at most for them to play.
    - ``hangup_wait_s`` (shared): longer than a phone call's, since closing the
      peer connection alone may take up to 5 s.
    """

    transport: ClassVar[str] = "webrtc"
    error_tag: ClassVar[str] = "webrtc"

    ice_servers: Sequence[str] = ()
    ice_username: str | None = None
    ice_credential: str | None = None
    gather_timeout_s: float = 5.0
    connect_timeout_s: float = 20.0
    hangup_wait_s: float = 10.0
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
        call.bridge.register(call.record.id)
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
        call.answered_at = time.monotonic()
        call.bridge.register(call_id)
        call.start()

    async def drop_pending(self, call: WebRtcCall) -> None:
        self._pending.discard(call)
        await call.close_peer()

    async def close_all(self, reason: CallEnd | EndReason | str = "server_shutdown") -> None:
        """Server shutdown: end every call (records finalized) and close every peer."""
        await self.hangup_all(reason)
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
        self.carrier_call_id: str | None = None  # e.g. the WhatsApp call id
        self.record: CallRecord | None = None
        self.bridge = CallBridge(
            gateway,
            self,
            log=log,
            on_event=self._on_engine_event,
            on_end=self._end_hook if on_end is not None else None,
        )
        self.pc = RTCPeerConnection(
            rtc_configuration(gateway.ice_servers, gateway.ice_username, gateway.ice_credential)
        )
        self.agent_track = AgentAudioTrack()
        self.channel: RTCDataChannel | None = None
        self.live = LiveEvents()
        self.answered_at = time.monotonic()
        self.connected_at: float | None = None
        self._caller_audio = CallerAudio()
        self._rec_up = StreamResampler(16000, RECORDING_RATE)
        self._rec_down = StreamResampler(16000, RECORDING_RATE)
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._wire_peer()

    @property
    def call_id(self) -> str | None:
        return self.bridge.call_id

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
                self.bridge.end_with(EndReason.PEER_FAILED)
            elif state == "closed":
                self.bridge.end_with(EndReason.PEER_CLOSED)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._caller_loop(track), "caller-audio")

        @pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            self.channel = channel

            @channel.on("open")
            def _open() -> None:
                self._send_live(self.live.started(self.call_id or ""))

            # aiortc announces a remote channel once it is already open ("open" never fires).
            if channel.readyState == "open":
                self._send_live(self.live.started(self.call_id or ""))

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
        return await self._gathered(await self.pc.createAnswer())

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
        return await self._gathered(await self.pc.createOffer())

    async def _gathered(self, description: RTCSessionDescription) -> str:
        """Our SDP with its candidates: aiortc gathers them inside setLocalDescription."""
        timeout = self.gw.gather_timeout_s
        try:
            await asyncio.wait_for(self.pc.setLocalDescription(description), timeout)
        except TimeoutError:
            raise SdpError(f"ICE gathering did not finish within {timeout:g} s") from None
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
        self._runner = asyncio.create_task(
            self.bridge.run(self._serve), name=f"{self.call_id}:webrtc"
        )

    def end(self, reason: CallEnd | EndReason | str) -> None:
        """End the call now; the first reason wins (see ``CallBridge.end_with``)."""
        self.bridge.end_with(reason)

    async def hangup(self, reason: CallEnd | EndReason | str) -> None:
        await self.bridge.hangup(reason)

    async def wait_finished(self, timeout: float) -> None:
        await self.bridge.wait_finished(timeout)

    async def _serve(self) -> None:
        bridge = self.bridge
        connected = asyncio.ensure_future(self._connected.wait())
        over = asyncio.ensure_future(bridge.over.wait())
        await asyncio.wait(
            {connected, over},
            timeout=self.gw.connect_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for f in (connected, over):
            f.cancel()
        if bridge.ended:
            return
        if not self._connected.is_set():
            timeout = self.gw.connect_timeout_s
            bridge.end_with(EndReason.TIMEOUT, f"peer did not connect within {timeout:g} s")
            return
        await bridge.start_session(self.agent, self.context)
        self._spawn(bridge.pump(self), "agent-audio")
        log.info(
            "call %s: WebRTC connected in %.0f ms",
            self.call_id,
            ((self.connected_at or 0) - self.answered_at) * 1000,
        )
        await bridge.over.wait()

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
            tag = self.gw.error_tag
            self.bridge.end_with(EndReason.ERROR, f"{tag}:{name}:{type(exc).__name__}")

    async def _end_hook(self) -> None:
        assert self.on_end is not None
        await self.on_end(self)

    # ---------------------------------------------------------------- caller side

    async def _caller_loop(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                self.bridge.end_with(EndReason.CALLER_HANGUP)
                return
            session = self.bridge.session
            if session is None:
                continue  # media before the session starts (a few ms): nothing to hear yet
            for pcm in self._caller_audio.push(frame):  # type: ignore[arg-type]
                try:
                    session.push_audio(pcm)
                except FrameError as exc:
                    self.bridge.end_with(EndReason.PROTOCOL_ERROR, str(exc))
                    return
                self.bridge.recorder.add_caller(self._rec_up.push(pcm))

    def _on_channel_message(self, message: object) -> None:
        try:
            data = json.loads(message) if isinstance(message, str) else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self._send_live([{"type": "error", "detail": "messages must be JSON objects"}])
            return
        kind = data.get("type")
        session = self.bridge.session
        if kind == "hangup":
            self.bridge.end_with(EndReason.CALLER_HANGUP)
        elif kind == "dtmf" and session is not None:
            try:
                session.push_dtmf(str(data.get("digit", "")))
            except ValueError as exc:
                self._send_live([{"type": "error", "detail": str(exc)}])
        else:
            self._send_live([{"type": "error", "detail": f"unknown message type {kind!r}"}])

    # ---------------------------------------------------------------- data channel

    def _on_engine_event(self, event: SessionEvent) -> None:
        self._send_live(self.live.encode(event))

    def _send_live(self, messages: list[dict[str, Any]]) -> None:
        channel = self.channel
        if channel is None or channel.readyState != "open":
            return
        for message in messages:
            with contextlib.suppress(Exception):  # a closing channel must not end the call
                channel.send(json.dumps(message))

    # ---------------------------------------------------------------- MediaSink

    async def play(self, pcm: np.ndarray) -> None:
        self.agent_track.push(pcm)
        self.bridge.recorder.add_agent(self._rec_down.push(pcm))

    async def clear(self) -> None:
        self.agent_track.clear()
        self._rec_down = StreamResampler(16000, RECORDING_RATE)
        self.bridge.recorder.clear_agent()

    async def end_utterance(self, utterance_id: int) -> None:
        self.agent_track.end_utterance()

    @property
    def queued_s(self) -> float:
        return self.agent_track.queued_frames * PTIME_S

    async def wait_for_playout(self) -> None:
        await asyncio.sleep(self.queued_s + _JITTER_S)

    # ---------------------------------------------------------------- CallTransport

    async def stop_media(self, end: CallEnd) -> None:
        # Say goodbye on the data channel before the peer goes away.
        self._send_live(self.live.encode(CallEnded(str(end))))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.close_peer()

    async def close(self, end: CallEnd) -> None:
        """Nothing left to do: ``stop_media`` closed the peer."""

    async def close_peer(self) -> None:
        with contextlib.suppress(Exception):
            self.agent_track.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), 5.0)
