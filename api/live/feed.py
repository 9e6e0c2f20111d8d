"""Live monitoring: who gets which event, in one process and across processes.

``LiveHub`` is the one object the rest of the app talks to:

- the call store tells it about new records and committed status changes,
- the phone and WebRTC gateways hand it every engine event of every call
  (``on_call_event``, a non-blocking observer),
- ``WS /api/v1/live`` subscribes one ``Subscription`` per socket, scoped to the
  key's organization.

Delivery, and why it is shaped this way:

- In one process (the default) an event goes straight into each subscriber's
  bounded queue. ``queue_size`` (``VOXLINE_LIVE_QUEUE_SIZE``, 1000) bounds the
  memory one watcher can hold; a subscriber that falls that far behind is
  dropped (its socket closes with 1013 and the reason) instead of making calls
  wait for it: calls never block on a watcher.
- With ``REDIS_URL`` (or ``VOXLINE_REDIS_URL``) every event is published to
  ``<prefix>:org:<org_id>`` and each process delivers what its pattern
  subscription receives, so a watcher connected to any API process sees every
  call of its organization, wherever the call runs. Publishing goes through one
  task per process (events of a call stay in order); if Redis is unreachable
  the events of this process are delivered locally meanwhile, and logged.
- Campaign progress is read from the database (the counters are shared by all
  processes), so every process watches it for its own subscribers and it does
  not travel through Redis.

Event shapes live in ``api.live_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.calls.models import Call
from api.campaigns.dispatcher import FINAL_CAMPAIGN, summary
from api.campaigns.models import Campaign
from api.live import events as live_events
from api.live.events import CallEvents, Event
from gateway.calls import CallRecord, CallStatus
from voice_core.events import AgentAudio, CallEnded, SessionEvent

log = logging.getLogger(__name__)

# Close code for a dropped subscriber (RFC 6455 1013: try again later).
CLOSE_SLOW = 1013
# Calls whose organization we remember (call id -> org id), most recent kept.
_ORG_CACHE = 10_000
# Events waiting to be published to Redis; past this they are delivered locally.
_PUBLISH_BACKLOG = 10_000
# Campaign progress: polled this often when no dispatcher pulse comes (other
# processes move counters too).
_CAMPAIGN_POLL_S = 1.0


class Subscription:
    """One watcher: a bounded queue of events for one organization (optionally one call
    and some event types)."""

    def __init__(
        self,
        org_id: str,
        queue_size: int,
        *,
        call_id: str | None = None,
        types: Iterable[str] | None = None,
    ) -> None:
        self.org_id = org_id
        self.call_id = call_id
        self.types = frozenset(types) if types else None
        self.queue_size = queue_size
        self.dropped: str | None = None
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(queue_size + 1)

    def wants(self, event: Event) -> bool:
        if self.types is not None and event["type"] not in self.types:
            return False
        return self.call_id is None or event.get("call_id") in (None, self.call_id)

    def offer(self, event: Event) -> bool:
        """Queue ``event`` without waiting; False if the subscriber was (now) dropped."""
        if self.dropped is not None:
            return False
        if not self.wants(event):
            return True
        if self._queue.qsize() >= self.queue_size:
            self.drop(f"slow consumer: more than {self.queue_size} events behind")
            return False
        self._queue.put_nowait(event)
        return True

    def drop(self, reason: str) -> None:
        if self.dropped is not None:
            return
        self.dropped = reason
        while not self._queue.empty():  # free the memory now; the reader gets the sentinel
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def get(self) -> Event | None:
        """The next event, or None once the subscriber is dropped (``dropped`` says why)."""
        if self.dropped is not None:
            return None
        return await self._queue.get()


class LiveHub:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        redis_url: str | None = None,
        prefix: str = "voxline:live",
        queue_size: int = 1000,
        campaign_changed: Callable[[], asyncio.Event] | None = None,
    ) -> None:
        self._sessions = sessions
        self.redis_url = redis_url
        self.prefix = prefix
        self.queue_size = queue_size
        self._campaign_changed = campaign_changed
        self._subs: dict[str, set[Subscription]] = {}
        self._org_of: OrderedDict[str, str] = OrderedDict()
        self._calls: dict[str, CallEvents] = {}
        self._unresolved: dict[str, list[Event]] = {}  # call id -> events awaiting its org
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outbox: asyncio.Queue[tuple[str, Event]] = asyncio.Queue(_PUBLISH_BACKLOG)
        self._redis: Any = None
        self._campaigns: dict[int, tuple[str, str, dict[str, int]]] = {}  # id -> (org, status, sum)
        self._wake_campaigns = asyncio.Event()
        self.redis_connected = False
        self.published = 0
        self.delivered = 0

    @property
    def transport(self) -> str:
        return "redis" if self.redis_url else "local"

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self.redis_url:
            self._spawn(self._publisher(), "live:redis-publish")
            self._spawn(self._redis_listener(), "live:redis-subscribe")
        self._spawn(self._campaign_watch(), "live:campaigns")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for subs in self._subs.values():
            for sub in subs:
                sub.drop("server shutting down")
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
            self._redis = None

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---------------------------------------------------------------- subscribers

    def subscribe(
        self, org_id: str, *, call_id: str | None = None, types: Iterable[str] | None = None
    ) -> Subscription:
        sub = Subscription(org_id, self.queue_size, call_id=call_id, types=types)
        self._subs.setdefault(org_id, set()).add(sub)
        self._wake_campaigns.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.org_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.org_id]

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def deliver(self, org_id: str, event: Event) -> None:
        """Hand ``event`` to this process's subscribers of ``org_id`` (never waits)."""
        for sub in list(self._subs.get(org_id, ())):
            if not sub.offer(event):
                log.warning("live subscriber of org %s dropped: %s", org_id, sub.dropped)
                self.unsubscribe(sub)
        self.delivered += 1

    # ---------------------------------------------------------------- publishing

    def publish(self, org_id: str, event: Event) -> None:
        """Send ``event`` to every subscriber of ``org_id``, in any process. Never waits."""
        self.published += 1
        if not self.redis_url:
            self.deliver(org_id, event)
            return
        try:
            self._outbox.put_nowait((org_id, event))
        except asyncio.QueueFull:
            log.warning("live: Redis publish backlog full; event delivered locally only")
            self.deliver(org_id, event)

    def _channel(self, org_id: str) -> str:
        return f"{self.prefix}:org:{org_id}"

    async def _connect(self) -> Any:
        if self._redis is None:
            import redis.asyncio as redis  # optional at run time: only with REDIS_URL

            self._redis = redis.from_url(self.redis_url, socket_connect_timeout=3)
        return self._redis

    async def _publisher(self) -> None:
        backoff = 0.5
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < 500:
                batch.append(self._outbox.get_nowait())
            try:
                client = await self._connect()
                async with client.pipeline(transaction=False) as pipe:
                    for org_id, event in batch:
                        pipe.publish(self._channel(org_id), live_events.dumps(event))
                    await pipe.execute()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "live: publishing %d event(s) to Redis failed (%s); delivered locally",
                    len(batch),
                    exc,
                )
                for org_id, event in batch:
                    self.deliver(org_id, event)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _redis_listener(self) -> None:
        backoff = 0.5
        pattern = f"{self.prefix}:org:*"
        head = f"{self.prefix}:org:"
        while True:
            pubsub = None
            try:
                client = await self._connect()
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.psubscribe(pattern)
                self.redis_connected = True
                backoff = 0.5
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "pmessage":
                        continue
                    channel = message["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    try:
                        event = json.loads(message["data"])
                    except (ValueError, TypeError):
                        log.warning("live: ignored a non-JSON message on %s", channel)
                        continue
                    if isinstance(event, dict) and "type" in event:
                        self.deliver(channel.removeprefix(head), event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.redis_connected = False
                log.warning("live: Redis subscription lost (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()

    # ---------------------------------------------------------------- calls

    def remember_org(self, call_id: str, org_id: str) -> None:
        self._org_of[call_id] = org_id
        self._org_of.move_to_end(call_id)
        while len(self._org_of) > _ORG_CACHE:
            self._org_of.popitem(last=False)

    async def status_hook(
        self, db: AsyncSession, row: Call, old: CallStatus, new: CallStatus
    ) -> None:
        """SqlCallStore status hook: learns the call's organization from its row (no I/O)."""
        self.remember_org(row.id, row.org_id)

    def on_call_created(self, record: CallRecord, org_id: str) -> None:
        self.remember_org(record.id, org_id)
        self.publish(org_id, live_events.call_started(record))

    def on_call_status(self, record: CallRecord) -> None:
        for event in live_events.call_status(record):
            self._publish_for_call(record.id, event)

    def on_call_event(self, call_id: str, event: SessionEvent) -> None:
        """Gateway observer: one engine event of a call running in this process."""
        if not call_id:
            return
        encoder = self._calls.get(call_id)
        if encoder is None:
            if isinstance(event, AgentAudio) and not self._subs and not self.redis_url:
                return  # nobody watches: skip the per-call state for audio frames
            encoder = self._calls[call_id] = CallEvents(call_id)
        for out in encoder.encode(event):
            self._publish_for_call(call_id, out)
        if isinstance(event, CallEnded):
            self._calls.pop(call_id, None)

    def _publish_for_call(self, call_id: str, event: Event) -> None:
        org_id = self._org_of.get(call_id)
        if org_id is not None and call_id not in self._unresolved:
            self.publish(org_id, event)
            return
        waiting = self._unresolved.get(call_id)
        if waiting is not None:
            waiting.append(event)
            return
        # A call this process has not seen created (another process made the record):
        # look its organization up once; its events wait, in order, meanwhile.
        self._unresolved[call_id] = [event]
        self._spawn(self._resolve(call_id), f"live:org-of:{call_id}")

    async def _resolve(self, call_id: str) -> None:
        org_id = None
        try:
            async with self._sessions() as db:
                org_id = (
                    await db.execute(select(Call.org_id).where(Call.id == call_id))
                ).scalar_one_or_none()
        except Exception:
            log.exception("live: looking up the organization of call %s failed", call_id)
        events = self._unresolved.pop(call_id, [])
        if org_id is None:
            log.warning("live: %d event(s) of call %s have no organization", len(events), call_id)
            return
        self.remember_org(call_id, org_id)
        for event in events:
            self.publish(org_id, event)

    # ---------------------------------------------------------------- campaigns

    async def campaign_snapshot(self, org_id: str) -> list[Event]:
        """``campaign.progress`` for each of the org's campaigns that is not finished."""
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(Campaign)
                    .where(Campaign.org_id == org_id, Campaign.status.notin_(FINAL_CAMPAIGN))
                    .order_by(Campaign.id)
                )
            ).scalars()
            return [
                live_events.campaign_progress(bc.id, bc.name, bc.status, summary(bc)) for bc in rows
            ]

    async def _campaign_watch(self) -> None:
        while True:
            try:
                if self._subs:
                    await self._poll_campaigns()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live: reading campaign progress failed")
            waits = [asyncio.ensure_future(self._wake_campaigns.wait())]
            if self._campaign_changed is not None:
                waits.append(asyncio.ensure_future(self._campaign_changed().wait()))
            try:
                await asyncio.wait(waits, timeout=_CAMPAIGN_POLL_S)
            finally:
                for w in waits:
                    w.cancel()
            self._wake_campaigns.clear()

    async def _poll_campaigns(self) -> None:
        orgs = list(self._subs)
        async with self._sessions() as db:
            rows = list(
                (
                    await db.execute(
                        select(Campaign).where(
                            Campaign.org_id.in_(orgs),
                            or_(
                                Campaign.status.notin_(FINAL_CAMPAIGN),
                                Campaign.id.in_(list(self._campaigns)),
                            ),
                        )
                    )
                ).scalars()
            )
            seen = set()
            for bc in rows:
                seen.add(bc.id)
                state = (bc.org_id, bc.status, summary(bc))
                if self._campaigns.get(bc.id) != state:
                    self.deliver(
                        bc.org_id,
                        live_events.campaign_progress(bc.id, bc.name, bc.status, state[2]),
                    )
                if bc.status in FINAL_CAMPAIGN:
                    self._campaigns.pop(bc.id, None)
                else:
                    self._campaigns[bc.id] = state
            for gone in set(self._campaigns) - seen:
                self._campaigns.pop(gone, None)


def redis_url_from(settings_value: str | None) -> str | None:
    """``VOXLINE_REDIS_URL`` (the settings field), else the conventional ``REDIS_URL``."""
    return settings_value or os.environ.get("REDIS_URL") or None
