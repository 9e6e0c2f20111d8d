"""A phone caller over the real media-stream protocol: the simulated carrier's callee
and the ``voxline call`` test caller.

It connects to ``/media-stream`` with a real WebSocket and behaves like a
carrier with a person on the line: sends ``connected`` and ``start``, then a
``media`` message every 20 ms of real time (silence, or a scripted line
synthesized with TTS), plays the agent's audio into a playout buffer, echoes
each ``mark`` when the audio before it has played and honours ``clear``. Each
line waits until the agent has finished talking (its mark came back and the
line went quiet), unless the line is meant to barge in.

It can also answer as an answering machine (``AnsweringMachine``): its greeting at
once, a pause, a real beep tone, then it records (stays quiet) until the agent hangs
up or its recording time runs out.

Measured on the way, as a caller would notice: reply latency (end of a line to
the first agent audio after it) and playout underruns (agent audio arriving
after the buffer ran dry mid-utterance: an audible gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import websockets
from websockets.exceptions import ConnectionClosed

from gateway.recording import RECORDING_RATE, StereoRecorder
from gateway.twilio.media_stream import FRAME_BYTES
from gateway.twilio.media_stream_client import (
    CarrierStream,
    ClearBuffer,
    PlayMark,
    PlayMedia,
    ServerMessageError,
)
from voice_core.audio import mulaw
from voice_core.audio.resample import resample
from voice_core.stt.base import SpeechToText
from voice_core.tts.base import TextToSpeech

log = logging.getLogger(__name__)

_FRAME_S = 0.02
_SILENCE = mulaw.encode(np.zeros(FRAME_BYTES, dtype=np.int16))


@dataclass
class CalleeLine:
    text: str
    barge_in: bool = False  # speak over the agent instead of waiting for it to finish
    audio: np.ndarray | None = None  # int16 @16 kHz; synthesized from ``text`` if None


DEFAULT_MACHINE_GREETING = (
    "Hi, you have reached the Miller family. We cannot come to the phone right now. "
    "Please leave your name and number after the tone and we will call you back."
)


@dataclass
class AnsweringMachine:
    """A voicemail box: what it says on answer, and its beep."""

    greeting: str = DEFAULT_MACHINE_GREETING
    gap_ms: int = 400  # between the greeting's end and the beep
    beep_hz: float = 1000.0
    beep_ms: int = 500  # 0: a machine without a beep
    beep_amplitude: float = 8000.0  # about -12 dBFS
    record_s: float = 30.0  # how long it records after the beep before it hangs up


def beep_tone(hz: float, ms: int, amplitude: float) -> np.ndarray:
    """A pure tone, int16 at 16 kHz: an answering machine's beep."""
    t = np.arange(16000 * ms // 1000) / 16000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


@dataclass
class SaidLine:
    text: str
    started_at: float  # seconds since the stream started
    ended_at: float | None = None


@dataclass
class HeardUtterance:
    started_at: float
    frames: list[tuple[float, bytes]] = field(default_factory=list)  # (play time, mu-law)
    ended_at: float | None = None
    interrupted: bool = False
    text: str = ""

    def audio(self) -> np.ndarray:
        """What was heard, int16 at 16 kHz."""
        if not self.frames:
            return np.zeros(0, dtype=np.int16)
        pcm8 = mulaw.decode(b"".join(p for _, p in self.frames))
        return resample(pcm8, RECORDING_RATE, 16000)


@dataclass
class CalleeReport:
    call_id: str
    said: list[SaidLine] = field(default_factory=list)
    heard: list[HeardUtterance] = field(default_factory=list)
    reply_latency_ms: list[float | None] = field(default_factory=list)  # one per line
    media_frames: int = 0
    marks_received: list[str] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    clears: int = 0
    clear_times: list[float] = field(default_factory=list)
    media_times: list[float] = field(default_factory=list)  # arrival of each agent frame
    underruns: int = 0
    underrun_ms: float = 0.0
    gaps_ms: list[float] = field(default_factory=list)  # each underrun's length
    errors: list[str] = field(default_factory=list)
    closed_by: str = ""  # "callee" (sent stop) or "server"
    close_code: int | None = None
    close_reason: str = ""
    recorder: StereoRecorder | None = None

    async def transcribe(self, stt: SpeechToText) -> None:
        for utterance in self.heard:
            audio = utterance.audio()
            if audio.size:
                utterance.text = (await stt.transcribe(audio)).text

    def save_recording(self, path: str | Path) -> Path | None:
        return self.recorder.save(path) if self.recorder else None


async def synthesize(tts: TextToSpeech, text: str) -> np.ndarray:
    chunks = [chunk async for chunk in tts.synthesize(text)]
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def to_mulaw_frames(audio16k: np.ndarray) -> list[bytes]:
    pcm8 = resample(audio16k, 16000, RECORDING_RATE)
    pad = (-pcm8.size) % FRAME_BYTES
    pcm8 = np.concatenate([pcm8, np.zeros(pad, dtype=np.int16)])
    data = mulaw.encode(pcm8)
    return [data[i : i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES)]


class SimulatedCallee:
    def __init__(
        self,
        url: str,
        lines: Sequence[CalleeLine | str],
        *,
        tts: TextToSpeech | None = None,
        agent_id: str | None = None,
        call_id: str | None = None,
        token: str | None = None,
        extra_parameters: dict[str, str] | None = None,
        wait_for_greeting: bool = True,
        reply_timeout_s: float = 20.0,
        settle_s: float = 0.6,
        barge_in_after_s: float = 1.0,
        max_call_s: float = 180.0,
        hang_up: bool = True,
        machine: AnsweringMachine | None = None,
    ) -> None:
        """``machine``: answer as that answering machine; ``lines`` are then ignored."""
        self.url = url
        self.machine = machine
        if machine is not None:
            lines = [CalleeLine(machine.greeting)]
        self.lines = [CalleeLine(x) if isinstance(x, str) else x for x in lines]
        self.tts = tts
        self.wait_for_greeting = wait_for_greeting
        self.reply_timeout_s = reply_timeout_s
        self.settle_s = settle_s
        self.barge_in_after_s = barge_in_after_s
        self.max_call_s = max_call_s
        self.hang_up = hang_up
        self.call_id = call_id or "call_" + uuid.uuid4().hex[:16]
        # The server reads call and agent from the token alone (minted for ``call_id``);
        # they travel as parameters too, as in Twilio's TwiML, for logs.
        params = {"call_id": self.call_id, **(extra_parameters or {})}
        if agent_id:
            params["agent_id"] = agent_id
        if token:
            params["token"] = token
        self.parameters = params
        self.stream = CarrierStream(
            stream_sid="MZ" + uuid.uuid4().hex, call_sid="CA" + uuid.uuid4().hex
        )
        self.report = CalleeReport(self.call_id)
        self._speech: deque[bytes] = deque()
        self._speech_done = asyncio.Event()
        self._outbox: deque[str] = deque()
        self._t0 = 0.0
        self._play_end = 0.0
        self._last_media_at = -1.0
        self._current: HeardUtterance | None = None
        self._echo_handles: dict[str, asyncio.TimerHandle] = {}
        self._closed = asyncio.Event()
        self._stop_sending = False

    # ---------------------------------------------------------------- clock

    def _now(self) -> float:
        return asyncio.get_running_loop().time() - self._t0

    # ---------------------------------------------------------------- run

    async def run(self) -> CalleeReport:
        for line in self.lines:
            if line.audio is None:
                if self.tts is None:
                    raise ValueError(f"line {line.text!r} has no audio and there is no TTS")
                line.audio = await synthesize(self.tts, line.text)
        loop = asyncio.get_running_loop()
        async with websockets.connect(
            self.url, open_timeout=5, close_timeout=2, max_size=2**20
        ) as ws:
            self._t0 = loop.time()
            self.report.recorder = StereoRecorder(clock=loop.time)
            await ws.send(self.stream.connected())
            await ws.send(self.stream.start(self.parameters))
            sender = asyncio.create_task(self._send_loop(ws))
            receiver = asyncio.create_task(self._receive_loop(ws))
            try:
                async with asyncio.timeout(self.max_call_s):
                    await self._script()
                if self.hang_up and not self._closed.is_set():
                    self._stop_sending = True
                    await sender
                    await self._flush_outbox_now(ws)
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send(self.stream.stop())
                    self.report.closed_by = "callee"
                    # The server closes after 'stop'; don't wait forever for it.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closed.wait(), 5)
            except TimeoutError:
                self.report.errors.append(f"call exceeded {self.max_call_s:g} s")
            finally:
                self._stop_sending = True
                for handle in self._echo_handles.values():
                    handle.cancel()
                for task in (sender, receiver):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await task
        self._close_utterance(self._play_end, interrupted=False)
        return self.report

    async def _flush_outbox_now(self, ws: websockets.ClientConnection) -> None:
        # Marks whose audio already played are echoed before 'stop', as a carrier would.
        for name, handle in list(self._echo_handles.items()):
            if self._play_end <= self._now():
                handle.cancel()
                self._echo(name)
        with contextlib.suppress(ConnectionClosed):
            while self._outbox:
                await ws.send(self._outbox.popleft())

    async def _script(self) -> None:
        if self.machine is not None:
            await self._answer_as_machine(self.machine)
            return
        since = 0.0
        # A first line that barges in talks over the greeting instead of waiting it out.
        if self.wait_for_greeting and not (self.lines and self.lines[0].barge_in):
            await self._wait_agent_done(since)
        for line in self.lines:
            if self._closed.is_set():
                return
            if line.barge_in:
                await self._wait_agent_talking(since)
            assert line.audio is not None
            said = SaidLine(line.text, self._now())
            self.report.said.append(said)
            self._speech_done.clear()
            self._speech.extend(to_mulaw_frames(line.audio))
            await self._speech_done.wait()
            said.ended_at = self._now()
            since = said.ended_at
            replied = await self._wait_agent_done(since)
            first = next((t for t in self.report.media_times if t >= since), None)
            self.report.reply_latency_ms.append(
                round((first - since) * 1000, 1) if first is not None and replied else None
            )

    async def _answer_as_machine(self, machine: AnsweringMachine) -> None:
        """Greeting at once (a machine waits for nobody), the beep, then record."""
        greeting = self.lines[0]
        assert greeting.audio is not None
        await self._say(greeting.text, greeting.audio)
        await asyncio.sleep(machine.gap_ms / 1000)  # the send loop fills it with silence
        if machine.beep_ms > 0 and not self._closed.is_set():  # hung up on before the beep
            tone = beep_tone(machine.beep_hz, machine.beep_ms, machine.beep_amplitude)
            await self._say("(beep)", tone)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), machine.record_s)

    async def _say(self, text: str, audio: np.ndarray) -> SaidLine:
        said = SaidLine(text, self._now())
        self.report.said.append(said)
        self._speech_done.clear()
        if self._closed.is_set():  # nobody to say it to (and nothing would set it again)
            said.ended_at = said.started_at
            return said
        self._speech.extend(to_mulaw_frames(audio))
        await self._speech_done.wait()
        said.ended_at = self._now()
        return said

    async def _wait_agent_done(self, since: float) -> bool:
        """Until the agent finished an utterance that started after ``since`` and went quiet.

        ``reply_timeout_s`` bounds the wait for the reply to *start* (an agent may
        say nothing); once it talks, it may talk as long as it likes.
        """
        deadline = self._now() + self.reply_timeout_s
        while not self._closed.is_set():
            now = self._now()
            started = [u for u in self.report.heard if u.started_at >= since]
            talking = self._current is not None and self._current.started_at >= since
            quiet = self._current is None and self._play_end <= now
            if (
                any(u.ended_at for u in started)
                and quiet
                and now - self._last_media_at >= (self.settle_s)
            ):
                return True
            if not started and not talking and now >= deadline:
                return False
            await asyncio.sleep(0.05)
        return False

    async def _wait_agent_talking(self, since: float) -> None:
        deadline = self._now() + self.reply_timeout_s
        while self._now() < deadline and not self._closed.is_set():
            current = self._current
            if current is not None and current.started_at >= since:
                if self._now() - current.started_at >= self.barge_in_after_s:
                    return
            await asyncio.sleep(0.02)

    # ---------------------------------------------------------------- wire

    async def _send_loop(self, ws: websockets.ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        recorder = self.report.recorder
        assert recorder is not None
        k = 0
        while not self._stop_sending:
            # An absolute schedule: 20 ms per frame from t0, so sleep jitter does not drift.
            delay = self._t0 + k * _FRAME_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            while self._outbox:
                await ws.send(self._outbox.popleft())
            if self._speech:
                frame = self._speech.popleft()
                if not self._speech:
                    self._speech_done.set()
            else:
                frame = _SILENCE
            recorder.add_caller(mulaw.decode(frame), k * 20)
            await ws.send(self.stream.media(frame, k * 20))
            k += 1

    async def _receive_loop(self, ws: websockets.ClientConnection) -> None:
        try:
            async for message in ws:
                if not isinstance(message, str):
                    self.report.errors.append("server sent a binary frame")
                    continue
                try:
                    event = self.stream.receive_text(message)
                except ServerMessageError as exc:
                    self.report.errors.append(str(exc))
                    continue
                if isinstance(event, PlayMedia):
                    self._on_media(event.payload)
                elif isinstance(event, PlayMark):
                    self._on_mark(event.name)
                elif isinstance(event, ClearBuffer):
                    self._on_clear()
        except ConnectionClosed:
            pass
        finally:
            if not self.report.closed_by:
                self.report.closed_by = "server"
            if ws.close_code is not None:
                self.report.close_code = ws.close_code
                self.report.close_reason = ws.close_reason or ""
            self._closed.set()
            self._speech_done.set()

    def _on_media(self, payload: bytes) -> None:
        now = self._now()
        self.report.media_frames += len(payload) // FRAME_BYTES
        self.report.media_times.append(now)
        self._last_media_at = now
        if self._play_end < now:
            if self._current is not None and self._current.frames:
                # The buffer ran dry in the middle of an utterance: the caller hears a gap.
                self.report.underruns += 1
                self.report.underrun_ms += (now - self._play_end) * 1000
                self.report.gaps_ms.append(round((now - self._play_end) * 1000, 1))
            self._play_end = now
        if self._current is None:
            self._current = HeardUtterance(started_at=self._play_end)
        for i in range(0, len(payload), FRAME_BYTES):
            self._current.frames.append((self._play_end, payload[i : i + FRAME_BYTES]))
            self._play_end += _FRAME_S
        assert self.report.recorder is not None
        self.report.recorder.add_agent(mulaw.decode(payload))

    def _on_mark(self, name: str) -> None:
        self.report.marks_received.append(name)
        self._close_utterance(self._play_end, interrupted=False)
        delay = max(0.0, self._play_end - self._now())
        loop = asyncio.get_running_loop()
        self._echo_handles[name] = loop.call_later(delay, self._echo, name)

    def _echo(self, name: str) -> None:
        self._echo_handles.pop(name, None)
        self.report.marks_echoed.append(name)
        self._outbox.append(self.stream.mark(name))

    def _on_clear(self) -> None:
        now = self._now()
        self.report.clears += 1
        self.report.clear_times.append(now)
        current = self._current
        if current is not None:
            current.frames = [(t, p) for t, p in current.frames if t < now]
        self._close_utterance(now, interrupted=True)
        self._play_end = min(self._play_end, now)
        assert self.report.recorder is not None
        self.report.recorder.clear_agent()
        # A carrier echoes every pending mark at once after a clear.
        for name, handle in list(self._echo_handles.items()):
            handle.cancel()
            self._echo(name)

    def _close_utterance(self, ended_at: float, *, interrupted: bool) -> None:
        if self._current is None:
            return
        self._current.ended_at = ended_at
        self._current.interrupted = interrupted
        self.report.heard.append(self._current)
        self._current = None
