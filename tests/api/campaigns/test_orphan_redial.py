"""Campaign orphan recovery asks the carrier before dialing a contact again: a call
still ringing is cancelled first, one still up is left alone, one that was answered
is finalized as interrupted and never re-dialed. SQLite, no server; the carrier is a
scripted one that reports through the store as real carriers do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.agents.models import Agent
from api.auth import create_organization
from api.calls.store import SqlCallStore
from api.campaigns.dispatcher import CampaignDispatcher, on_call_status
from api.campaigns.models import Campaign, CampaignContact
from api.campaigns.redial import Redial, decide
from api.db.engine import create_engine, migrate, session_factory
from gateway.calls import CallRecord, CallStatus, Direction
from gateway.carriers import CarrierError, carrier_reason


@dataclass
class ScriptedCarrier:
    """Answers ``call_status`` with ``status`` (or raises ``error``); a cancel stops a
    ringing call and reports it cancelled through the store, as a status callback does."""

    store: SqlCallStore
    status: CallStatus | None = None
    error: str | None = None
    cancel_works: bool = True
    name: str = "scripted"
    asked: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    async def call_status(self, call_id: str) -> CallStatus | None:
        self.asked.append(call_id)
        if self.error:
            raise CarrierError(self.error)
        return self.status

    async def cancel(self, call_id: str) -> bool:
        if not self.cancel_works:
            return False
        self.cancelled.append(call_id)
        await self.store.set_status(
            call_id, CallStatus.CANCELLED, reason=carrier_reason("canceled")
        )
        return True


@dataclass
class Services:
    store: SqlCallStore
    carrier: ScriptedCarrier
    settings_default_from: str | None = "+15550100000"


@dataclass
class Orphan:
    dispatcher: CampaignDispatcher
    services: Services
    carrier: ScriptedCarrier
    store: SqlCallStore
    sessions: Any
    contact_id: int
    call_id: str


async def make_orphan(tmp_path: Path, status: CallStatus) -> AsyncIterator[Orphan]:
    """A contact dialed by a dispatcher whose lease ran out, its call at ``status``."""
    url = f"sqlite:///{tmp_path / 'voxline.db'}"
    await migrate(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    store = SqlCallStore(sessions)
    store.status_hooks.append(on_call_status)
    now = datetime.now(UTC)
    call_id = "call_orphan_1"
    async with sessions() as db:
        org = await create_organization(db, "org")
        agent = Agent(org_id=org.id, name="agent", spec={"name": "agent"}, version=1)
        db.add(agent)
        await db.flush()
        bc = Campaign(
            org_id=org.id,
            agent_id=agent.id,
            name="c",
            status="in_progress",
            concurrency=1,
            retry={},
            total_contacts=1,
            in_progress=1,
            created_at=now,
            updated_at=now,
        )
        db.add(bc)
        await db.flush()
        contact = CampaignContact(
            bulk_call_id=bc.id,
            phone_number="+15550190001",
            variables={},
            state="in_progress" if status == CallStatus.IN_PROGRESS else "dialing",
            bucket="in_progress",
            attempts=1,
            lease_owner="dispatcher-dead",
            lease_expires_at=now - timedelta(seconds=5),
            call_ids=[call_id],
            created_at=now,
            updated_at=now,
        )
        db.add(contact)
        await db.flush()
        store.add(
            db,
            CallRecord(
                id=call_id,
                agent_id=agent.id,
                direction=Direction.OUTBOUND,
                to_number=contact.phone_number,
                status=CallStatus.QUEUED,
            ),
            org_id=org.id,
            bulk_call_id=bc.id,
            bulk_contact_id=contact.id,
        )
        await db.commit()
        contact_id = contact.id
    for step in (CallStatus.RINGING, CallStatus.IN_PROGRESS):
        if status in (step, CallStatus.IN_PROGRESS):
            await store.set_status(call_id, step)
        if step == status:
            break
    carrier = ScriptedCarrier(store)
    services = Services(store, carrier)
    dispatcher = CampaignDispatcher(sessions, services)
    try:
        yield Orphan(dispatcher, services, carrier, store, sessions, contact_id, call_id)
    finally:
        await engine.dispose()


@pytest.fixture
async def ringing(tmp_path: Path) -> AsyncIterator[Orphan]:
    async for orphan in make_orphan(tmp_path, CallStatus.RINGING):
        yield orphan


@pytest.fixture
async def answered(tmp_path: Path) -> AsyncIterator[Orphan]:
    async for orphan in make_orphan(tmp_path, CallStatus.IN_PROGRESS):
        yield orphan


async def contact_of(orphan: Orphan) -> CampaignContact:
    async with orphan.sessions() as db:
        contact = await db.get(CampaignContact, orphan.contact_id)
        assert contact is not None
        return contact


async def test_a_call_still_ringing_is_cancelled_before_the_contact_is_requeued(ringing) -> None:
    ringing.carrier.status = CallStatus.RINGING
    await ringing.dispatcher.recover_orphans()
    assert ringing.carrier.cancelled == [ringing.call_id]
    call = await ringing.store.get(ringing.call_id)
    assert call is not None and call.status.final
    assert call.end_reason is not None and call.end_reason.startswith("orphaned")
    contact = await contact_of(ringing)
    # Back in the queue, the orphaned attempt not counted.
    assert (contact.state, contact.bucket, contact.attempts) == ("queued", "queued", 0)


async def test_a_ringing_call_the_carrier_will_not_cancel_is_left_for_the_next_round(
    ringing,
) -> None:
    ringing.carrier.status = CallStatus.RINGING
    ringing.carrier.cancel_works = False
    await ringing.dispatcher.recover_orphans()
    call = await ringing.store.get(ringing.call_id)
    assert call is not None and call.status == CallStatus.RINGING and call.end_reason is None
    assert (await contact_of(ringing)).state == "dialing"


@pytest.mark.parametrize(
    "at_carrier, error",
    [(CallStatus.IN_PROGRESS, None), (None, "Twilio unreachable: ConnectError")],
    ids=["still-up", "carrier-unreachable"],
)
async def test_a_call_up_at_the_carrier_or_unknown_is_never_redialed(
    ringing, at_carrier, error
) -> None:
    ringing.carrier.status, ringing.carrier.error = at_carrier, error
    await ringing.dispatcher.recover_orphans()
    await ringing.dispatcher.recover_orphans()  # asked again each round, still waiting
    assert ringing.carrier.asked == [ringing.call_id] * 2 and ringing.carrier.cancelled == []
    call = await ringing.store.get(ringing.call_id)
    assert call is not None and call.status == CallStatus.RINGING
    contact = await contact_of(ringing)
    assert (contact.state, contact.attempts) == ("dialing", 1)


async def test_a_call_over_without_an_answer_requeues_the_contact(ringing) -> None:
    ringing.carrier.status = CallStatus.NO_ANSWER
    await ringing.dispatcher.recover_orphans()
    contact = await contact_of(ringing)
    assert (contact.state, contact.attempts) == ("queued", 0)
    assert ringing.carrier.cancelled == []


@pytest.mark.parametrize("at_carrier", [CallStatus.COMPLETED, None])
async def test_an_answered_call_is_finalized_as_interrupted_not_redialed(
    answered, at_carrier
) -> None:
    """The carrier says it was answered and is over, or (the simulated carrier, which
    dies with its process) knows nothing while our record says it was answered."""
    answered.carrier.status = at_carrier
    await answered.dispatcher.recover_orphans()
    call = await answered.store.get(answered.call_id)
    assert call is not None and call.status == CallStatus.FAILED
    assert call.end_reason is not None and call.end_reason.startswith("interrupted: ")
    contact = await contact_of(answered)
    assert (contact.state, contact.bucket, contact.attempts) == ("failed", "failed", 1)


def test_the_decision_table() -> None:
    queued = CallRecord(id="c", agent_id="a", direction=Direction.OUTBOUND)
    talking = CallRecord(
        id="c", agent_id="a", direction=Direction.OUTBOUND, status=CallStatus.IN_PROGRESS
    )
    assert decide(queued, None, asked=False) is Redial.WAIT
    assert decide(queued, CallStatus.RINGING, asked=True) is Redial.CANCEL
    assert decide(queued, CallStatus.QUEUED, asked=True) is Redial.CANCEL
    assert decide(talking, CallStatus.IN_PROGRESS, asked=True) is Redial.WAIT
    assert decide(queued, CallStatus.COMPLETED, asked=True) is Redial.INTERRUPTED
    assert decide(talking, None, asked=True) is Redial.INTERRUPTED
    for over in (CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED, None):
        assert decide(queued, over, asked=True) is Redial.REQUEUE
    assert decide(None, None, asked=True) is Redial.REQUEUE


@dataclass
class CancelOnlyCarrier:
    """A carrier that can cancel but not say how a call is."""

    name: str = "cancel-only"
    cancelled: list[str] = field(default_factory=list)

    async def cancel(self, call_id: str) -> bool:
        self.cancelled.append(call_id)
        return False  # not ringing (or not known): nothing to stop


async def test_a_carrier_without_a_status_query_is_asked_to_cancel_first(ringing) -> None:
    carrier = CancelOnlyCarrier()
    ringing.services.carrier = carrier  # type: ignore[assignment]
    await ringing.dispatcher.recover_orphans()
    assert carrier.cancelled == [ringing.call_id]
    contact = await contact_of(ringing)
    assert (contact.state, contact.attempts) == ("queued", 0)
