"""FreeSWITCH's (mod_audio_fork) or jambonz's side of a forked call, for tests.

It opens the WebSocket with the dialect's subprotocol, sends the JSON metadata, then
the caller's L16 every 20 ms. Each ``playAudio`` is queued and played in real time,
one after the other, as the application playing mod_audio_fork's files (or jambonz)
does; jambonz answers each with ``playDone`` once it has played; ``killAudio`` stops
the current one and drops the rest; the caller hanging up closes the socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets
from websockets.exceptions import ConnectionClosed

from tests.gateway.asterisk.helpers import Heard


@dataclass
class AudioForkPeer:
    url: str
    metadata: dict[str, Any]
    subprotocol: str = "audio.drachtio.org"
    jambonz: bool = False
    heard: Heard = field(init=False)
    plays: int = 0
    kills: int = 0
    disconnect_received: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)
    _queue: deque[np.ndarray] = field(default_factory=deque)  # 20 ms pieces to play

    def __post_init__(self) -> None:
        self.rate = int(self.metadata["sampleRate"])
        self.heard = Heard(self.rate)
        self._done_after: deque[int] = deque()  # pieces left when each playAudio ends

    async def connect(self) -> None:
        self.ws = await websockets.connect(
            self.url, subprotocols=[self.subprotocol], close_timeout=2
        )
        await self.ws.send(json.dumps(self.metadata))
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._tick())]

    async def _receive(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                msg = json.loads(message)
                self.messages.append(msg)
                if msg["type"] == "playAudio":
                    data = msg["data"]
                    assert data["audioContentType"] == "raw" and data["sampleRate"] == self.rate
                    pcm = np.frombuffer(base64.b64decode(data["audioContent"]), dtype="<i2")
                    piece = self.rate // 50
                    self._queue.extend(pcm[i : i + piece] for i in range(0, pcm.size, piece))
                    self.plays += 1
                    self._done_after.append(len(self._queue))
                elif msg["type"] == "killAudio":
                    self.kills += 1
                    self._queue.clear()
                    self._done_after.clear()
                elif msg["type"] == "disconnect":
                    self.disconnect_received = True

    async def _tick(self) -> None:
        """Every 20 ms: one frame of caller audio out, one piece of agent audio played."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        silence = bytes(self.rate // 50 * 2)
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.ws.send(silence)
                if self._queue:
                    self.heard.add(self._queue.popleft().astype(np.int16))
                    self._done_after = deque(n - 1 for n in self._done_after)
                while self._done_after and self._done_after[0] <= 0:
                    self._done_after.popleft()
                    if self.jambonz:
                        await self.ws.send(json.dumps({"type": "playDone"}))
                due += 0.02
                await asyncio.sleep(max(0.0, due - loop.time()))

    async def send(self, message: str | bytes) -> None:
        await self.ws.send(message)

    async def hang_up(self) -> None:
        await self.ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
