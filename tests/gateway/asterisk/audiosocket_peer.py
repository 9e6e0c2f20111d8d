"""Asterisk's side of an AudioSocket call, for tests: connect, send the UUID, stream
8 kHz slin every 20 ms (silence, or what ``say`` queued), play what comes back as it
arrives (Asterisk forwards each frame at once), and hang up by closing the socket."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid
from dataclasses import dataclass, field

import numpy as np

from tests.gateway.asterisk.helpers import Heard

FRAME_BYTES = 320
HEADER = struct.Struct(">BH")


def message(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


@dataclass
class AudioSocketPeer:
    host: str
    port: int
    call_uuid: uuid.UUID = field(default_factory=uuid.uuid4)
    heard: Heard = field(default_factory=lambda: Heard(8000))
    arrivals: list[float] = field(default_factory=list)  # each audio frame's arrival
    received_hangup: bool = False
    closed_by_server: bool = False
    _writer: asyncio.StreamWriter | None = None
    _speech_left: list[bytes] = field(default_factory=list)  # frames still to say

    async def connect(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        writer.write(message(0x01, self.call_uuid.bytes))
        await writer.drain()
        self._reader_task = asyncio.create_task(self._read(reader))
        self._sender_task = asyncio.create_task(self._send_silence())

    async def _send_silence(self) -> None:
        assert self._writer is not None
        loop = asyncio.get_running_loop()
        due = loop.time()
        silence = bytes(FRAME_BYTES)
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                frame = silence
                if self._speech_left:
                    frame = self._speech_left.pop(0)
                self._writer.write(message(0x10, frame))
                await self._writer.drain()
                due += 0.02
                await asyncio.sleep(max(0.0, due - loop.time()))

    def say(self, pcm8: np.ndarray) -> None:
        data = pcm8.astype("<i2").tobytes()
        data += bytes(-len(data) % FRAME_BYTES)
        frames = range(0, len(data), FRAME_BYTES)
        self._speech_left.extend(data[i : i + FRAME_BYTES] for i in frames)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                kind, length = HEADER.unpack(await reader.readexactly(HEADER.size))
                payload = await reader.readexactly(length)
                if kind == 0x10:
                    self.arrivals.append(loop.time())
                    self.heard.add(np.frombuffer(payload, dtype="<i2").astype(np.int16))
                elif kind == 0x00:
                    self.received_hangup = True
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_by_server = True

    async def hang_up(self) -> None:
        """What Asterisk does when the caller hangs up: close the socket."""
        self._sender_task.cancel()
        assert self._writer is not None
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader_task
