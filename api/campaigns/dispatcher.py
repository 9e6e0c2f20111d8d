"""Campaigns: contact state, counters, and the durable dispatcher.

Every contact is in exactly one counter bucket (queued, in_progress, completed,
failed, busy, no_answer, voicemail) and every move between buckets updates the
campaign's counters in the same transaction, so ``queued + in_progress + completed
+ failed + busy + no_answer + voicemail == total_contacts`` holds at every read and live status is a
primary-key lookup.

Durability: a contact is claimed with a lease (owner + expiry) in the same
transaction that creates its call record. The owning process renews its leases;
a lease that expires (the process died) makes the contact's call "orphaned":
another process (or this one after a restart) asks the carrier how the call really
is (``api.campaigns.redial``): one that is still ringing is cancelled, one that was
answered is finalized as interrupted, and only one that is over without having been
answered fails as orphaned and puts the contact back in the queue without counting
the attempt. On PostgreSQL the
campaign row is locked (``FOR UPDATE``) while contacts are claimed and contacts
are taken with ``FOR UPDATE SKIP LOCKED``, so several processes share a
campaign without dialing a contact twice or exceeding its concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.agents.models import Agent
from api.calls.models import Call
from api.calls.store import SqlCallStore
from api.campaigns.models import Campaign, CampaignContact
from api.campaigns.redial import Redial, decide
from api.campaigns.schemas import CallingWindow
from api.keys.limits import IN_FLIGHT as CALLS_IN_FLIGHT
from api.processes.orphans import finalize_interrupted
from gateway.calls import CallRecord, CallStatus, Direction, new_call_id

log = logging.getLogger(__name__)

BUCKETS = ("queued", "in_progress", "completed", "failed", "busy", "no_answer", "voicemail")
ACTIVE = ("scheduled", "in_progress")
FINAL_CAMPAIGN = ("completed", "cancelled", "failed")
IN_FLIGHT = ("dialing", "in_progress")
# A call's final status -> the contact's bucket (a call hung up through the API
# or cancelled before it connected did not reach the contact: failed).
OUTCOME_BUCKET = {
    "completed": "completed",
    "busy": "busy",
    "no_answer": "no_answer",
    "voicemail": "voicemail",  # an answering machine: a retry policy may name it
    "failed": "failed",
    "cancelled": "failed",
}
ORPHANED = "orphaned"


def utc(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


def summary(bc: Campaign) -> dict[str, int]:
    return {"total_contacts": bc.total_contacts, **{b: getattr(bc, b) for b in BUCKETS}}


def is_postgres(db: AsyncSession) -> bool:
    return db.bind.dialect.name == "postgresql"


async def move(db: AsyncSession, bulk_call_id: int, src: str, dst: str, n: int = 1) -> None:
    """Move n contacts between counters (SQL arithmetic: safe under concurrency)."""
    if n == 0 or src == dst:
        return
    cols = Campaign.__table__.c
    await db.execute(
        update(Campaign)
        .where(Campaign.id == bulk_call_id)
        .values({src: cols[src] - n, dst: cols[dst] + n, "updated_at": datetime.now(UTC)})
    )


def in_window(now: datetime, tz: str, window: dict[str, Any] | None) -> bool:
    if not window:
        return True
    w = CallingWindow.model_validate(window)
    local = now.astimezone(ZoneInfo(tz))
    t = local.time().replace(tzinfo=None)
    if w.start < w.end:
        return local.weekday() in w.days and w.start <= t < w.end
    # Past midnight (22:00-06:00): after start belongs to today, before end to yesterday.
    if t >= w.start:
        return local.weekday() in w.days
    return t < w.end and (local.weekday() - 1) % 7 in w.days


def start_time(start_at: datetime | None, tz: str) -> datetime | None:
    if start_at is None:
        return None
    if start_at.tzinfo is None:
        start_at = start_at.replace(tzinfo=ZoneInfo(tz))
    return start_at.astimezone(UTC)


async def add_contacts(
    db: AsyncSession, bc: Campaign, accepted: list[tuple[str, dict[str, Any]]]
) -> None:
    now = datetime.now(UTC)
    db.add_all(
        CampaignContact(
            bulk_call_id=bc.id,
            phone_number=phone,
            variables=variables,
            state="queued",
            bucket="queued",
            created_at=now,
            updated_at=now,
        )
        for phone, variables in accepted
    )
    n = len(accepted)
    cols = Campaign.__table__.c
    await db.execute(
        update(Campaign)
        .where(Campaign.id == bc.id)
        .values(
            total_contacts=cols.total_contacts + n,
            queued=cols.queued + n,
            updated_at=now,
            # New contacts reopen a finished campaign.
            status=Campaign.status if bc.status != "completed" else "in_progress",
        )
    )


async def on_call_status(db: AsyncSession, call: Call, old: CallStatus, new: CallStatus) -> None:
    """SqlCallStore hook: a campaign call's outcome moves its contact, in the same
    transaction as the call's final status."""
    if call.bulk_contact_id is None:
        return
    pg = is_postgres(db)
    contact = await db.get(CampaignContact, call.bulk_contact_id, with_for_update=pg)
    if contact is None or not contact.call_ids or contact.call_ids[-1] != call.id:
        return  # an older attempt's late callback
    now = datetime.now(UTC)
    if new == CallStatus.IN_PROGRESS and contact.state == "dialing":
        contact.state = "in_progress"
        contact.updated_at = now
        return
    if not new.final or contact.state not in IN_FLIGHT:
        return
    bc = await db.get(Campaign, contact.bulk_call_id, with_for_update=pg)
    if bc is None:
        return
    retry = bc.retry or {}
    outcome = new.value
    contact.last_outcome = outcome
    contact.lease_owner = None
    contact.lease_expires_at = None
    contact.updated_at = now
    orphaned = (call.end_reason or "").startswith(ORPHANED)
    if bc.status != "cancelled" and orphaned:
        # The process carrying the call died: the contact was not really tried.
        contact.attempts = max(0, contact.attempts - 1)
        target, contact.state, contact.next_attempt_at = "queued", "queued", now
    elif (
        bc.status != "cancelled"
        and outcome in retry.get("on", [])
        and contact.attempts <= int(retry.get("max_retries", 0))
    ):
        target, contact.state = "queued", "queued"
        contact.next_attempt_at = now + timedelta(seconds=float(retry.get("delay_s", 0)))
    else:
        target = OUTCOME_BUCKET.get(outcome, "failed")
        contact.state = outcome
        contact.next_attempt_at = None
    await move(db, bc.id, contact.bucket, target)
    contact.bucket = target


class CampaignDispatcher:
    """Keeps each active campaign's calls in flight, within its limits."""

    def __init__(
        self,
        sessions: async_sessionmaker,
        services: Any,
        *,
        tick_s: float = 0.5,
        lease_s: float = 30.0,
        org_max_concurrent: int = 50,
        owner: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._services = services
        self.tick_s = tick_s
        self.lease_s = lease_s
        self.org_max_concurrent = org_max_concurrent
        self.owner = owner or f"dispatcher-{uuid.uuid4().hex[:12]}"
        self.accepting = True  # a draining process stops claiming contacts
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dials: set[asyncio.Task[None]] = set()
        self._last_renew = 0.0
        self.changed = asyncio.Event()  # pulsed after every commit that moves counters

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="campaign-dispatcher")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._dials):
            task.cancel()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("campaign dispatcher tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            self._wake.clear()

    def _pulse(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def tick(self) -> None:
        now = datetime.now(UTC)
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._last_renew >= self.lease_s / 3:
            self._last_renew = loop_now
            await self._renew_leases(now)
            await self.recover_orphans(now)
        async with self._sessions() as db:
            ids = (
                (await db.execute(select(Campaign.id).where(Campaign.status.in_(ACTIVE))))
                .scalars()
                .all()
            )
        for bc_id in ids:
            # A fresh clock per campaign: recovery above may have taken a while, and a
            # new call must never look older than the orphan it replaces.
            await self._advance(bc_id, datetime.now(UTC))

    async def _renew_leases(self, now: datetime) -> None:
        async with self._sessions() as db:
            await db.execute(
                update(CampaignContact)
                .where(
                    CampaignContact.lease_owner == self.owner, CampaignContact.state.in_(IN_FLIGHT)
                )
                .values(lease_expires_at=now + timedelta(seconds=self.lease_s))
            )
            await db.commit()

    async def recover_orphans(self, now: datetime | None = None) -> int:
        """Fail the calls of contacts whose lease expired; the hook requeues them."""
        now = now or datetime.now(UTC)
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(
                        CampaignContact.id, CampaignContact.call_ids, CampaignContact.lease_owner
                    ).where(
                        CampaignContact.state.in_(IN_FLIGHT),
                        or_(
                            CampaignContact.lease_expires_at.is_(None),
                            CampaignContact.lease_expires_at < now,
                        ),
                    )
                )
            ).all()
        for contact_id, call_ids, owner in rows:
            if not call_ids:
                continue
            try:
                await self._recover(contact_id, call_ids[-1], owner)
            except Exception:
                log.exception(
                    "campaign contact %s: recovering call %s failed", contact_id, call_ids[-1]
                )
        if rows:
            self._pulse()
        return len(rows)

    async def _recover(self, contact_id: int, call_id: str, owner: str | None) -> None:
        """One orphaned call: ask the carrier before its contact may be dialed again
        (``api.campaigns.redial``)."""
        store = self._services.store
        carrier = self._services.carrier
        record = await store.get(call_id)
        ask = getattr(carrier, "call_status", None)
        blind = ask is None  # a carrier without a status query: cancel, then trust our record
        try:
            at_carrier, asked = (None, True) if blind else (await ask(call_id), True)
        except Exception as exc:  # CarrierError: ask again next round
            at_carrier, asked = None, False
            log.warning("campaign call %s: the carrier cannot say how it is: %s", call_id, exc)
        action = decide(record, at_carrier, asked=asked)
        if blind and action is Redial.REQUEUE:
            action = Redial.CANCEL
        lease = f"dispatcher {owner} stopped renewing its lease"
        reason = f"{ORPHANED}: {lease}"
        log.warning(
            "campaign contact %s: call %s orphaned (%s); carrier says %s: %s",
            contact_id,
            call_id,
            lease,
            at_carrier or "no such call",
            action,
        )
        if action is Redial.WAIT:
            return
        if action is Redial.INTERRUPTED:
            await finalize_interrupted(
                store,
                call_id,
                why=f"{lease}; the carrier says {at_carrier or 'no such call'}",
                owner=record.owner if record is not None else None,
                recording_path=record.recording_path if record is not None else None,
            )
            return
        if action is Redial.CANCEL:
            # The reason goes on first: the carrier reports the cancellation itself (a
            # status callback), and the hook must read it as an orphan's, to re-queue.
            await store.update(call_id, end_reason=reason)
            if not await carrier.cancel(call_id) and not blind:
                await store.update(call_id, end_reason=None)  # still up: ask again later
                return
        await store.set_status(call_id, CallStatus.FAILED, reason=reason)

    async def _org_in_flight(self, db: AsyncSession, org_id: str) -> int:
        """Campaign claims (counted before their call rows exist) plus every other call
        of the organization in flight: inbound, browser, WhatsApp and API dispatches
        share the one cap with its campaigns."""
        claimed = (
            await db.execute(
                select(func.coalesce(func.sum(Campaign.in_progress), 0)).where(
                    Campaign.org_id == org_id, Campaign.status.in_(ACTIVE + ("paused",))
                )
            )
        ).scalar_one()
        others = (
            await db.execute(
                select(func.count())
                .select_from(Call)
                .where(
                    Call.org_id == org_id,
                    Call.bulk_call_id.is_(None),
                    Call.status.in_(CALLS_IN_FLIGHT),
                )
            )
        ).scalar_one()
        return int(claimed) + int(others)

    async def _advance(self, bc_id: int, now: datetime) -> None:
        records: list[CallRecord] = []
        async with self._sessions() as db:
            pg = is_postgres(db)
            if not pg:
                # SQLite has no row locks: a first write takes the database's write lock,
                # so the counters read next cannot change under this claim.
                await db.execute(
                    update(Campaign)
                    .where(Campaign.id == bc_id)
                    .values(updated_at=Campaign.updated_at)
                )
            bc = await db.get(Campaign, bc_id, with_for_update=pg)
            if bc is None or bc.status not in ACTIVE:
                return
            # The clock is read under the lock: a call ended by a transaction we waited
            # for must not look newer than the calls this claim creates.
            now = datetime.now(UTC)
            if bc.status == "scheduled":
                if utc(bc.start_at) is not None and utc(bc.start_at) > now:
                    return
                bc.status = "in_progress"
            if bc.queued == 0 and bc.in_progress == 0:
                bc.status = "completed"
                bc.completed_at = now
                await db.commit()
                self._pulse()
                return
            free = bc.concurrency - bc.in_progress
            if not self.accepting or free <= 0 or not in_window(now, bc.timezone, bc.window):
                await db.commit()
                return
            free = min(free, self.org_max_concurrent - await self._org_in_flight(db, bc.org_id))
            if free <= 0:
                await db.commit()
                return
            q = (
                select(CampaignContact)
                .where(
                    CampaignContact.bulk_call_id == bc.id,
                    CampaignContact.state == "queued",
                    or_(
                        CampaignContact.next_attempt_at.is_(None),
                        CampaignContact.next_attempt_at <= now,
                    ),
                )
                .order_by(CampaignContact.id)
                .limit(free)
            )
            if pg:
                q = q.with_for_update(skip_locked=True)
            contacts = list((await db.execute(q)).scalars())
            if not contacts:
                await db.commit()
                return
            lease_until = now + timedelta(seconds=self.lease_s)
            from_number = bc.from_number or self._services.settings_default_from or "+15550100000"
            agent_version = (
                await db.execute(select(Agent.version).where(Agent.id == bc.agent_id))
            ).scalar_one_or_none()
            store: SqlCallStore = self._services.store
            for c in contacts:
                call_id = new_call_id()
                c.state = "dialing"
                c.bucket = "in_progress"
                c.attempts += 1
                c.lease_owner = self.owner
                c.lease_expires_at = lease_until
                c.call_ids = [*(c.call_ids or []), call_id]
                c.updated_at = now
                record = CallRecord(
                    id=call_id,
                    agent_id=bc.agent_id,
                    direction=Direction.OUTBOUND,
                    from_number=from_number,
                    to_number=c.phone_number,
                    status=CallStatus.QUEUED,
                    carrier=self._services.carrier.name,
                    context={**(c.variables or {}), "attempt": c.attempts},
                    created_at=now.timestamp(),
                )
                # In this transaction: the claim and the call row commit together.
                records.append(
                    store.add(
                        db,
                        record,
                        org_id=bc.org_id,
                        agent_version=agent_version,
                        bulk_call_id=bc.id,
                        bulk_contact_id=c.id,
                    )
                )
            await move(db, bc.id, "queued", "in_progress", len(contacts))
            await db.commit()
            org_id = bc.org_id
        self._pulse()
        await store.announce_created(records, org_id)
        for record in records:
            task = asyncio.create_task(self._dial(record), name=f"dial:{record.id}")
            self._dials.add(task)
            task.add_done_callback(self._dials.discard)

    async def _dial(self, record: CallRecord) -> None:
        log.info("campaign call %s to %s dialed by %s", record.id, record.to_number, self.owner)
        try:
            await self._services.place_call(record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("campaign call %s could not be placed: %s", record.id, exc)
            await self._services.store.set_status(
                record.id, CallStatus.FAILED, reason=f"carrier:{exc}"
            )
        self.wake()


async def set_campaign_status(db: AsyncSession, bc: Campaign, status: str) -> None:
    now = datetime.now(UTC)
    bc.status = status
    bc.updated_at = now
    if status == "cancelled":
        bc.completed_at = now
        # Contacts not yet dialed will not be: they stay counted as queued (never
        # tried); their state says cancelled.
        await db.execute(
            update(CampaignContact)
            .where(and_(CampaignContact.bulk_call_id == bc.id, CampaignContact.state == "queued"))
            .values(state="cancelled", updated_at=now)
        )
