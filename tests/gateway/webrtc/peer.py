"""A test peer in Python (aiortc): plays a caller's audio, records what it hears.

It plays the browser in the fast in-process tests and WhatsApp's side in the
WhatsApp test; in both, ICE gathers 127.0.0.1 only (the loopback switch).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from typing import Any

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler

from voice_core.audio.resample import resample

RATE = 48000
FRAME = 960


class ScriptedAudioTrack(MediaStreamTrack):
    """Plays ``samples`` (16 kHz int16) after ``delay_s`` of silence, then silence, paced."""

    kind = "audio"

    def __init__(self, samples: np.ndarray | None = None, delay_s: float = 0.0) -> None:
        super().__init__()
        audio = np.zeros(0, np.int16) if samples is None else resample(samples, 16000, RATE)
        lead = np.zeros(int(delay_s * RATE), np.int16)
        self._audio = np.concatenate([lead, audio]).astype(np.int16)
        self._pos = 0
        self._start: float | None = None
        self.finished_at: float | None = None  # when the last voiced frame went out

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._pos / RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = self._audio[self._pos : self._pos + FRAME]
        if chunk.size < FRAME:
            if chunk.size and self.finished_at is None:
                self.finished_at = time.monotonic()
            chunk = np.concatenate([chunk, np.zeros(FRAME - chunk.size, np.int16)])
        frame = AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pos
        frame.time_base = fractions.Fraction(1, RATE)
        self._pos += FRAME
        return frame


class TestPeer:
    __test__ = False  # not a pytest class

    def __init__(self, speech: np.ndarray | None = None, delay_s: float = 0.0,
                 data_channel: bool = False) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = ScriptedAudioTrack(speech, delay_s)
        self.pc.addTrack(self.mic)
        self.heard: list[np.ndarray] = []  # 16 kHz int16 chunks
        self.heard_at: list[tuple[float, np.ndarray]] = []  # voiced chunks and when
        self.first_voiced_at: float | None = None
        self.messages: list[dict[str, Any]] = []
        self.channel = self.pc.createDataChannel("events") if data_channel else None
        if self.channel is not None:

            @self.channel.on("message")
            def _message(data: object) -> None:
                if isinstance(data, str):
                    self.messages.append(json.loads(data))

        self._tasks: list[asyncio.Task[None]] = []

        @self.pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            self._tasks.append(asyncio.create_task(self._listen(track)))

    async def _listen(self, track: MediaStreamTrack) -> None:
        resampler = AudioResampler(format="s16", layout="mono", rate=16000)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1).astype(np.int16)
                if pcm.size and np.abs(pcm).max() > 500:
                    now = time.monotonic()
                    self.first_voiced_at = self.first_voiced_at or now
                    self.heard_at.append((now, pcm))
                self.heard.append(pcm)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    def audio(self) -> np.ndarray:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, np.int16)

    async def wait_connected(self, timeout: float = 10.0) -> float:
        t0 = time.monotonic()
        while self.pc.connectionState != "connected":
            if self.pc.connectionState in ("failed", "closed"):
                raise AssertionError(f"peer connection {self.pc.connectionState}")
            if time.monotonic() - t0 > timeout:
                raise AssertionError("peer did not connect")
            await asyncio.sleep(0.02)
        return time.monotonic() - t0

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()


async def speak(engine: Any, text: str) -> np.ndarray:
    chunks = [c async for c in engine.tts.synthesize(text)]
    return np.concatenate(chunks).astype(np.int16)


async def transcribe(engine: Any, audio: np.ndarray) -> str:
    return (await engine.stt.transcribe(audio)).text
