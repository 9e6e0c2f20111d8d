"""Asterisk's side of a WebSocket-channel call, for tests: what chan_websocket does.

It dials the app's WebSocket (as a ``websocket_client.conf`` connection would), sends
``MEDIA_START``, streams the caller's media every 20 ms, and plays what the app sends
the way the driver does: into a frame queue, one ``optimal_frame_size`` frame every
20 ms; ``FLUSH_MEDIA`` empties the queue, ``REPORT_QUEUE_DRAINED`` asks for one
``QUEUE_DRAINED`` once it is empty, ``HANGUP`` ends the call, and the caller hanging up
closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import websockets
from websockets.exceptions import ConnectionClosed

from tests.gateway.asterisk.helpers import Heard
from voice_core.audio import mulaw


@dataclass
class WebSocketChannelPeer:
    url: str  # ws://host:port/asterisk/websocket?agent_id=...
    format: str = "slin16"
    sample_rate: int = 16000
    frame_bytes: int = 640
    channel_id: str = "1761245643.1"
    json_control: bool = False
    heard: Heard = field(init=False)
    commands: list[str] = field(default_factory=list)
    drained_sent: int = 0
    hangup_received: bool = False
    close_code: int | None = None
    _queue: deque[bytes] = field(default_factory=deque)
    _report_drained: bool = False

    def __post_init__(self) -> None:
        self.heard = Heard(self.sample_rate)

    def decode(self, frame: bytes) -> np.ndarray:
        if self.format == "ulaw":
            return mulaw.decode(frame)
        return np.frombuffer(frame, dtype="<i2").astype(np.int16)

    def silence(self) -> bytes:
        if self.format == "ulaw":
            return mulaw.encode(np.zeros(self.frame_bytes, dtype=np.int16))
        return bytes(self.frame_bytes)

    def media_start(self) -> str:
        if self.json_control:
            return json.dumps(
                {
                    "event": "MEDIA_START",
                    "connection_id": "voxline",
                    "channel": "WebSocket/voxline/0x7f3a2c001234",
                    "channel_id": self.channel_id,
                    "format": self.format,
                    "optimal_frame_size": self.frame_bytes,
                    "ptime": 20,
                    "channel_variables": {},
                }
            )
        return (
            f"MEDIA_START connection_id:voxline channel:WebSocket/voxline/0x7f3a2c001234 "
            f"channel_id:{self.channel_id} format:{self.format} "
            f"optimal_frame_size:{self.frame_bytes} ptime:20"
        )

    async def connect(self) -> None:
        self.ws = await websockets.connect(self.url, close_timeout=2)
        await self.ws.send(self.media_start())
        self._tasks = [
            asyncio.create_task(self._receive()),
            asyncio.create_task(self._tick()),
        ]

    def _event(self, name: str) -> str:
        return (
            json.dumps({"event": name, "channel_id": self.channel_id})
            if self.json_control
            else name
        )

    async def _receive(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    size = self.frame_bytes
                    self._queue.extend(message[i : i + size] for i in range(0, len(message), size))
                    continue
                command = json.loads(message)["command"] if self.json_control else message
                self.commands.append(command)
                if command == "FLUSH_MEDIA":
                    self._queue.clear()
                elif command == "REPORT_QUEUE_DRAINED":
                    self._report_drained = True
                elif command == "HANGUP":
                    self.hangup_received = True
        except ConnectionClosed:
            pass
        self.close_code = self.ws.close_code

    async def _tick(self) -> None:
        """The driver's 20 ms timer: caller media out, one queued frame played."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        silence = self.silence()
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.ws.send(silence)
                if self._queue:
                    frame = self._queue.popleft()
                    self.heard.add(self.decode(frame))
                elif self._report_drained:
                    self._report_drained = False
                    self.drained_sent += 1
                    await self.ws.send(self._event("QUEUE_DRAINED"))
                due += 0.02
                await asyncio.sleep(max(0.0, due - loop.time()))

    async def send(self, message: str | bytes) -> None:
        await self.ws.send(message)

    async def hang_up(self) -> None:
        """The caller hangs up: chan_websocket closes the socket."""
        await self.ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
