"""Calls forked from FreeSWITCH (``mod_audio_fork``) or jambonz (``listen``): the
gateways, one ``AudioForkCall`` per socket, and the router that serves them.

The PBX opens the WebSocket, sends its JSON metadata (the call's ids, ``sampleRate``,
and voxline's ``agent_id`` / ``call_id`` when the dialplan passes them), then the
caller's L16 audio. The agent's audio goes back as ``playAudio`` chunks: both PBXes
play each chunk as a whole (mod_audio_fork writes it to a file the application
plays), so a chunk is sent once it holds ``chunk_s`` of audio, the first of each
utterance once it holds ``first_chunk_s``: the engine hands audio out in real time,
and the larger first chunk is the margin that keeps later chunks arriving before the
previous one has finished playing. That margin is this protocol's latency cost; the
Asterisk transports stream frame by frame. A barge-in is ``killAudio`` (and the chunk
being filled is dropped).

jambonz answers each ``playAudio`` with ``playDone``, which confirms the goodbye has
played; mod_audio_fork says nothing, so a ``PlayoutClock`` estimates it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from fastapi import APIRouter, WebSocket

from gateway.agents import AgentDirectory
from gateway.asterisk.basic_auth import basic_auth_ok
from gateway.asterisk.call_start import CallRequest, begin_call, bounded_context
from gateway.asterisk.playout_clock import PlayoutClock
from gateway.asterisk.pumps import run_pumps
from gateway.asterisk.websocket_pump import WebSocketLine, chosen_subprotocol
from gateway.bridge import CallBridge, TransportGateway
from gateway.freeswitch.audio_fork import (
    Audio,
    AudioForkProtocol,
    Dialect,
    Dtmf,
    ForkEvent,
    Metadata,
    PlayDone,
    ProtocolError,
    UnknownMessage,
)
from gateway.media_budget import MediaBudget
from gateway.recording import RECORDING_RATE
from voice_core.audio import FRAME_SAMPLES, Framer
from voice_core.audio.resample import StreamResampler
from voice_core.end_reasons import CallEnd, EndReason

log = logging.getLogger(__name__)

AUDIO_FORK_PATH = "/freeswitch/audio-fork"
JAMBONZ_PATH = "/jambonz/listen"
_RESERVED = frozenset({"agent_id", "call_id", "sampleRate", "mixType"})


@dataclass(kw_only=True)
class AudioForkGateway(TransportGateway):
    """What every mod_audio_fork call shares.

    Limits, and why:
    - ``username``/``password``: when set, the upgrade must carry them as HTTP Basic
      credentials (``MOD_AUDIO_BASIC_AUTH_USERNAME``/``_PASSWORD``, jambonz ``wsAuth``).
    - ``start_timeout_s``: the metadata is the first frame, sent on connecting.
    - ``idle_timeout_s``: the PBX sends audio every 20 ms for the whole call.
    - ``send_timeout_s``: a peer that stops reading blocks our sends.
    - ``first_chunk_s``/``chunk_s``: see the module docstring (latency against gaps).
    - ``media_burst_s``: how far the caller's audio may run ahead of the wall clock
      (network jitter); a peer sending faster than real time is ended.
    """

    transport: ClassVar[str] = "freeswitch"
    error_tag: ClassVar[str] = "freeswitch"
    screens_answering_machines: ClassVar[bool] = True
    dialect: ClassVar[Dialect] = Dialect.AUDIO_FORK

    agents: AgentDirectory
    default_agent_id: str | None = None
    username: str | None = None
    password: str | None = None
    start_timeout_s: float = 10.0
    idle_timeout_s: float = 10.0
    send_timeout_s: float = 5.0
    first_chunk_s: float = 0.5
    chunk_s: float = 0.3
    media_burst_s: float = 2.0

    async def handle(self, websocket: WebSocket) -> None:
        if self.username is not None and not basic_auth_ok(
            websocket.headers.get("authorization"), self.username, self.password or ""
        ):
            log.warning(
                "%s stream from %s refused: bad credentials", self.transport, websocket.client
            )
            await websocket.close(code=1008, reason="unauthorized")
            return
        if not self.accepting:
            await websocket.close(code=1013, reason="not taking new calls (draining)")
            return
        await AudioForkCall(websocket, self).run()


@dataclass(kw_only=True)
class JambonzGateway(AudioForkGateway):
    """jambonz ``listen``: the same family, its own subprotocol, ``playDone`` replies."""

    transport: ClassVar[str] = "jambonz"
    error_tag: ClassVar[str] = "jambonz"
    dialect: ClassVar[Dialect] = Dialect.JAMBONZ


def build_router(gateway: AudioForkGateway, path: str | None = None) -> APIRouter:
    router = APIRouter()
    default = JAMBONZ_PATH if gateway.dialect is Dialect.JAMBONZ else AUDIO_FORK_PATH

    @router.websocket(path or default)
    async def audio_fork(websocket: WebSocket) -> None:
        await gateway.handle(websocket)

    return router


class AudioForkCall:
    def __init__(self, websocket: WebSocket, gateway: AudioForkGateway) -> None:
        self.gw = gateway
        self.ws = websocket
        self.proto = AudioForkProtocol(gateway.dialect)
        self.bridge = CallBridge(gateway, self, log=log)
        self.line = WebSocketLine(websocket, self.bridge, gateway.send_timeout_s)
        self.playout = PlayoutClock()
        self.acknowledged = gateway.dialect is Dialect.JAMBONZ  # playDone per playAudio
        self.plays_pending = 0
        self._played = asyncio.Event()
        self._played.set()
        self._caller_samples = 0
        self._budget = MediaBudget(gateway.media_burst_s)
        self._rate = 16000  # the stream's, once the metadata names it
        self._up: StreamResampler | None = None
        self._rec_up: StreamResampler | None = None
        self._up_framer = Framer(FRAME_SAMPLES)
        self._down: StreamResampler | None = None
        self._rec_down = StreamResampler(16000, RECORDING_RATE)
        self._chunk: list[np.ndarray] = []  # wire-rate samples of the chunk being filled
        self._chunk_rec: list[np.ndarray] = []  # the same audio at the recording rate
        self._chunk_samples = 0
        self._first_chunk = True

    @property
    def call_id(self) -> str | None:
        return self.bridge.call_id

    async def run(self) -> None:
        subprotocol = chosen_subprotocol(self.ws, (self.gw.dialect.subprotocol,))
        await self.ws.accept(subprotocol=subprotocol)
        await self.bridge.run(self._serve)

    async def hangup(self, reason: CallEnd | EndReason | str) -> None:
        await self.bridge.hangup(reason)

    # ---------------------------------------------------------------- the call

    async def _serve(self) -> None:
        while self.proto.metadata is None:
            for event in await self._receive(self.gw.start_timeout_s, "the metadata"):
                if isinstance(event, Metadata):
                    await self._begin(event)
            if self.bridge.ended:
                return
        await run_pumps(self.bridge.over, self._read_loop(), self.bridge.pump(self))

    async def _receive(self, timeout: float, waiting_for: str) -> list[ForkEvent]:
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
            log.warning("%s stream %s: %s", self.gw.transport, self.ws.client, exc.message)
            self.line.fail(exc.message)
            return []

    def setup_media(self, metadata: Metadata) -> None:
        """Converters for the stream's sample rate (engine: 16 kHz frames)."""
        self._rate = metadata.sample_rate
        self._up = StreamResampler(self._rate, 16000)
        self._rec_up = StreamResampler(self._rate, RECORDING_RATE)
        self._down = StreamResampler(16000, self._rate)

    async def _begin(self, metadata: Metadata) -> None:
        self.setup_media(metadata)
        request = CallRequest(
            carrier=self.gw.transport,
            carrier_call_id=metadata.call_sid or None,
            call_id=metadata.call_id,
            agent_id=metadata.agent_id,
            from_number=metadata.from_number,
            to_number=metadata.to_number,
            context=bounded_context(metadata.custom, _RESERVED),
        )
        if await begin_call(
            self.bridge, self.gw.agents, request, default_agent_id=self.gw.default_agent_id
        ):
            self._budget = MediaBudget(self.gw.media_burst_s)  # real time starts now
            log.info(
                "call %s: %s stream %s started (%d Hz)",
                self.call_id,
                self.gw.transport,
                metadata.call_sid or "-",
                self._rate,
            )

    # ---------------------------------------------------------------- caller side

    async def _read_loop(self) -> None:
        while not self.bridge.ended:
            for event in await self._receive(self.gw.idle_timeout_s, "audio"):
                self._on_event(event)

    def _on_event(self, event: ForkEvent) -> None:
        session = self.bridge.session
        assert session is not None
        if isinstance(event, Audio):
            assert self._up is not None and self._rec_up is not None
            if self.bridge.ended:
                return
            if not self._budget.take(len(event.pcm) / 2 / self._rate):
                self.line.fail(
                    f"media faster than real time ({self._budget.ahead_s:.1f} s ahead, "
                    f"{self.gw.media_burst_s:g} s allowed)"
                )
                return
            pcm = np.frombuffer(event.pcm, dtype="<i2").astype(np.int16)
            pcm8 = self._rec_up.push(pcm)
            self.bridge.recorder.add_caller(pcm8, self._caller_samples * 1000 // RECORDING_RATE)
            self._caller_samples += pcm8.size
            for frame in self._up_framer.push(self._up.push(pcm)):
                self.bridge.push_caller(frame)
        elif isinstance(event, Dtmf):
            session.push_dtmf(event.digit)
        elif isinstance(event, PlayDone):
            self.plays_pending = max(0, self.plays_pending - 1)
            if not self.plays_pending:
                self._played.set()
        elif isinstance(event, UnknownMessage):
            log.debug(
                "call %s: ignoring %s message %s", self.call_id, self.gw.transport, event.kind
            )

    # ---------------------------------------------------------------- MediaSink

    async def play(self, pcm: np.ndarray) -> None:
        assert self._down is not None
        wire = self._down.push(pcm)
        self._chunk.append(wire)
        self._chunk_rec.append(self._rec_down.push(pcm))
        self._chunk_samples += wire.size
        limit = self.gw.first_chunk_s if self._first_chunk else self.gw.chunk_s
        if self._chunk_samples >= limit * self._rate:
            await self._send_chunk()

    async def clear(self) -> None:
        self._down = StreamResampler(16000, self._rate)
        self._rec_down = StreamResampler(16000, RECORDING_RATE)
        self._chunk, self._chunk_rec, self._chunk_samples = [], [], 0
        self._first_chunk = True
        self.bridge.recorder.clear_agent()
        self.playout.clear()
        self.plays_pending = 0
        self._played.set()
        await self.line.send_text(self.proto.kill_audio())

    async def end_utterance(self, utterance_id: int) -> None:
        assert self._down is not None
        # The resamplers hold the utterance's last ~100 ms: flush them (and start afresh).
        tail = self._down.flush()
        self._chunk.append(tail)
        self._chunk_samples += tail.size
        self._chunk_rec.append(self._rec_down.flush())
        self._down = StreamResampler(16000, self._rate)
        self._rec_down = StreamResampler(16000, RECORDING_RATE)
        await self._send_chunk()
        self._first_chunk = True

    @property
    def queued_s(self) -> float:
        return self.playout.queued_s + self._chunk_samples / self._rate

    async def wait_for_playout(self) -> None:
        # Bounded by the bridge. jambonz says when it has played everything; for
        # mod_audio_fork the clock is all there is.
        await self._send_chunk()
        if self.acknowledged:
            await self._played.wait()
            return
        while self.playout.queued_s > 0:
            await asyncio.sleep(min(self.playout.queued_s, 0.1))

    async def _send_chunk(self) -> None:
        if not self._chunk_samples:
            return
        wire = np.concatenate(self._chunk)
        rec = np.concatenate(self._chunk_rec)
        self._chunk, self._chunk_rec, self._chunk_samples = [], [], 0
        self._first_chunk = False
        await self.line.send_text(self.proto.play_audio(wire.astype("<i2").tobytes()))
        self.bridge.recorder.add_agent(rec)
        self.playout.sent(wire.size / self._rate)
        if self.acknowledged:
            self.plays_pending += 1
            self._played.clear()

    # ---------------------------------------------------------------- CallTransport

    async def stop_media(self, end: CallEnd) -> None:
        """Nothing to do: the pumps are over once ``_serve`` returns."""

    async def close(self, end: CallEnd) -> None:
        last = self.proto.disconnect() if self.proto.metadata is not None else None
        await self.line.close(end, last)
