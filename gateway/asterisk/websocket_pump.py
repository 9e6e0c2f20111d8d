"""The socket half of a PBX call over a WebSocket: receive, send and close, all bounded.

Asterisk's WebSocket channel and FreeSWITCH's mod_audio_fork both open a WebSocket to
voxline and carry TEXT control messages and BINARY media. ``WebSocketLine`` is what
their calls share: every wait on the peer has a timeout (a half-closed socket cannot
hold a call open), a peer that goes away ends the call with a reason (hang-up once
the call started, ``never_started`` before), and the socket is closed once.

Transport-neutral (a candidate for ``gateway.bridge``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.asterisk.pumps import CallOver
from gateway.bridge import CallBridge
from voice_core.end_reasons import CallEnd, EndReason

# WebSocket close codes (RFC 6455): 1000 normal, 1008 policy violation (bad messages).
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL = 1008


@dataclass(frozen=True)
class Message:
    text: str | None = None
    data: bytes | None = None


def chosen_subprotocol(websocket: WebSocket, preferred: tuple[str, ...] = ()) -> str | None:
    """The subprotocol to accept: a preferred one the peer offers, else its first offer
    (PBX clients refuse a handshake that drops the subprotocol they asked for)."""
    offered = [p.strip() for p in websocket.scope.get("subprotocols", []) if p.strip()]
    for name in preferred:
        if name in offered:
            return name
    return offered[0] if offered else None


class WebSocketLine:
    def __init__(self, websocket: WebSocket, bridge: CallBridge, send_timeout_s: float) -> None:
        self.ws = websocket
        self.bridge = bridge
        self.send_timeout_s = send_timeout_s
        self.closed = False  # the socket is gone (the peer closed it, or we did)
        self.protocol_error = False

    async def receive(self, timeout: float, waiting_for: str, *, started: bool) -> Message | None:
        """The next message, or None once the call is over (its reason is set)."""
        end = self.bridge.end_with
        try:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
        except TimeoutError:
            end(EndReason.TIMEOUT, f"no message for {timeout:g} s (waiting for {waiting_for})")
            return None
        except (WebSocketDisconnect, RuntimeError):
            message = {"type": "websocket.disconnect"}
        if message["type"] == "websocket.disconnect":
            # A PBX hangs up by closing the media socket.
            self.closed = True
            end(EndReason.CALLER_HANGUP if started else EndReason.NEVER_STARTED)
            return None
        if message.get("text") is not None:
            return Message(text=message["text"])
        return Message(data=message.get("bytes") or b"")

    def fail(self, detail: str) -> None:
        self.protocol_error = True
        self.bridge.end_with(EndReason.PROTOCOL_ERROR, detail)

    async def send_text(self, text: str) -> None:
        await self._send(self.ws.send_text(text))

    async def send_bytes(self, data: bytes) -> None:
        await self._send(self.ws.send_bytes(data))

    async def _send(self, sending: Awaitable[None]) -> None:
        try:
            await asyncio.wait_for(sending, self.send_timeout_s)
        except TimeoutError:
            self.bridge.end_with(
                EndReason.TIMEOUT, f"the PBX did not take a message for {self.send_timeout_s:g} s"
            )
            raise CallOver from None
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.closed = True
            self.bridge.end_with(EndReason.CALLER_HANGUP)
            raise CallOver from None

    async def close(self, end: CallEnd, last_words: str | None = None) -> None:
        """Close once; ``last_words`` (a hang-up command) goes out first if the peer is there."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            if last_words is not None:
                await asyncio.wait_for(self.ws.send_text(last_words), 1.0)
        # Close reasons are limited to 123 bytes by RFC 6455.
        reason = str(end).encode()[:120].decode(errors="ignore")
        code = CLOSE_PROTOCOL if self.protocol_error else CLOSE_NORMAL
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code, reason), 2.0)
