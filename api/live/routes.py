"""WS /api/v1/live: the organization's live events (see ``api.live_events``).

Authentication, because a browser's WebSocket cannot send an Authorization header:

- ``Authorization: Bearer <key>`` on the upgrade request (SDKs, curl-like tools), or
- the first message, within ``AUTH_TIMEOUT_S``: ``{"type": "auth", "token": "<key>"}``
  (the dashboard does this). Keys are never taken from the URL: query strings end
  up in access logs.

A bad or missing key gets ``{"type": "error", "detail": ...}`` and close 1008; so does an
open socket whose key is revoked (re-checked every ``KEY_RECHECK_S``) or whose scope no
longer allows reading.
Query parameters narrow the stream: ``call_id=<id>`` (that call's events, plus
campaign progress) and ``types=transcript,call.status`` (those types only).

After ``hello`` comes a ``campaign.progress`` for each unfinished campaign, then
events as they happen. A client may send ``{"type": "ping"}`` (answered with
``pong``); anything else is ignored. A watcher that falls ``queue_size`` events
behind is disconnected with close 1013 and the reason, so it can reconnect and
re-read state from the REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from api.auth import Principal, authenticate, key_is_live
from api.keys.guard import guard_of
from api.live import events as live_events
from api.live.feed import CLOSE_SLOW, LiveHub, Subscription

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"])

AUTH_TIMEOUT_S = 10.0  # a socket that says nothing is not a watcher
SEND_TIMEOUT_S = 10.0  # a peer that stops reading is closed (its queue would fill anyway)
CLOSE_POLICY = 1008
KEY_RECHECK_S = 2.0  # a revoked key's open sockets close within this (plus one query)


async def _authenticate(ws: WebSocket) -> Principal | None:
    header = ws.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if not (scheme.lower() == "bearer" and key.strip()):
        try:
            raw = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
        except TimeoutError:
            await _refuse(ws, f"no auth message within {AUTH_TIMEOUT_S:g} s")
            return None
        except (WebSocketDisconnect, RuntimeError):
            return None
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not (
            isinstance(message, dict)
            and message.get("type") == "auth"
            and isinstance(message.get("token"), str)
        ):
            await _refuse(ws, 'the first message must be {"type": "auth", "token": "<API key>"}')
            return None
        key = message["token"]
    try:
        who = await authenticate(ws.app.state.db_sessions, key.strip())
        guard_of(ws.app).check(who.key_id, who.scope, "WEBSOCKET", ws.url.path, time.monotonic())
        return who
    except HTTPException as exc:
        await _refuse(ws, str(exc.detail))
        return None


async def _refuse(ws: WebSocket, detail: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"type": "error", "detail": detail}))
        await ws.close(CLOSE_POLICY, detail[:120])


@router.websocket("/api/v1/live")
async def live(ws: WebSocket, call_id: str | None = None, types: str | None = None) -> None:
    await ws.accept()
    who = await _authenticate(ws)
    if who is None:
        return
    wanted = [t.strip() for t in types.split(",") if t.strip()] if types else None
    unknown = sorted(set(wanted or ()) - set(live_events.TYPES))
    if unknown:
        await _refuse(ws, f"unknown event type(s) {unknown}; known: {list(live_events.TYPES)}")
        return
    hub: LiveHub = ws.app.state.live
    sub = hub.subscribe(who.org_id, call_id=call_id, types=wanted)
    try:
        await _send(ws, live_events.hello(who.org_id, hub.transport, hub.queue_size))
        for event in await hub.campaign_snapshot(who.org_id):
            if sub.wants(event):
                await _send(ws, event)
        reader = asyncio.create_task(_read(ws))
        writer = asyncio.create_task(_write(ws, sub))
        watcher = asyncio.create_task(_watch_key(ws, who))
        tasks = (reader, writer, watcher)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if watcher.done() and not watcher.cancelled() and watcher.exception() is None:
            await _refuse(ws, "API key revoked")
        if sub.dropped is not None:
            with contextlib.suppress(Exception):
                await ws.close(CLOSE_SLOW, sub.dropped[:120])
    except (WebSocketDisconnect, RuntimeError, TimeoutError, OSError):
        pass
    finally:
        hub.unsubscribe(sub)


async def _watch_key(ws: WebSocket, who: Principal) -> None:
    """Returns once the socket's key is revoked (or deleted)."""
    sessions = ws.app.state.db_sessions
    while True:
        await asyncio.sleep(KEY_RECHECK_S)
        with contextlib.suppress(Exception):  # a database blip does not drop watchers
            if not await key_is_live(sessions, who.key_id):
                return


async def _send(ws: WebSocket, event: live_events.Event) -> None:
    await asyncio.wait_for(ws.send_text(live_events.dumps(event)), SEND_TIMEOUT_S)


async def _write(ws: WebSocket, sub: Subscription) -> None:
    while True:
        event = await sub.get()
        if event is None:
            return  # dropped: the handler closes with the reason
        await _send(ws, event)


async def _read(ws: WebSocket) -> None:
    """Until the peer goes away; answers pings."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text and '"ping"' in text:
            with contextlib.suppress(ValueError):
                if json.loads(text).get("type") == "ping":
                    await _send(ws, {"type": "pong", "ts": time.time()})
