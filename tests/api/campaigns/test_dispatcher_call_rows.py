"""The dispatcher creates campaign calls through the call store: each call row is added
inside the transaction that claims its contact (both commit or neither does), and the
store announces the calls only after that commit. SQLite, no server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api.agents.models import Agent
from api.auth import create_organization
from api.calls.models import Call
from api.calls.store import SqlCallStore
from api.campaigns import dispatcher as dispatcher_module
from api.campaigns.dispatcher import CampaignDispatcher
from api.campaigns.models import Campaign, CampaignContact
from api.db.engine import create_engine, migrate, session_factory
from gateway.calls import CallRecord, CallStatus, Direction


@dataclass
class Carrier:
    name: str = "test-carrier"


@dataclass
class Services:
    store: SqlCallStore
    carrier: Carrier = field(default_factory=Carrier)
    settings_default_from: str | None = "+15550100000"
    placed: list[CallRecord] = field(default_factory=list)

    async def place_call(self, record: CallRecord) -> str:
        self.placed.append(record)
        return "placed"


@dataclass
class World:
    sessions: Any
    store: SqlCallStore
    org_id: str
    agent_id: str
    campaign_id: int
    announced: list[tuple[CallRecord, str]]


@pytest.fixture()
async def world(tmp_path: Path) -> AsyncIterator[World]:
    url = f"sqlite:///{tmp_path / 'voxline.db'}"
    await migrate(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as db:
        org = await create_organization(db, "org")
        agent = Agent(org_id=org.id, name="agent", spec={"name": "agent"}, version=3)
        db.add(agent)
        await db.flush()
        bc = Campaign(
            org_id=org.id,
            agent_id=agent.id,
            name="c",
            status="in_progress",
            concurrency=2,
            retry={},
            total_contacts=3,
            queued=3,
            created_at=now,
            updated_at=now,
        )
        db.add(bc)
        await db.flush()
        db.add_all(
            CampaignContact(
                bulk_call_id=bc.id,
                phone_number=f"+1555019000{i}",
                variables={"name": f"n{i}"},
                state="queued",
                bucket="queued",
                created_at=now,
                updated_at=now,
            )
            for i in range(3)
        )
        await db.commit()
        ids = (org.id, agent.id, bc.id)
    store = SqlCallStore(sessions)
    announced: list[tuple[CallRecord, str]] = []
    store.created_listeners.append(lambda record, org_id: announced.append((record, org_id)))
    yield World(sessions, store, *ids, announced)
    await engine.dispose()


async def calls_of(world: World) -> list[Call]:
    async with world.sessions() as db:
        return list((await db.execute(select(Call).order_by(Call.id))).scalars())


async def contacts_of(world: World) -> list[CampaignContact]:
    async with world.sessions() as db:
        q = select(CampaignContact).order_by(CampaignContact.id)
        return list((await db.execute(q)).scalars())


async def test_claimed_contacts_get_call_rows_announced_after_commit(world: World) -> None:
    services = Services(world.store)
    disp = CampaignDispatcher(world.sessions, services, owner="d1")
    await disp.tick()

    async def dialed() -> None:
        while len(services.placed) < 2:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(dialed(), 10)

    rows = await calls_of(world)
    contacts = await contacts_of(world)
    assert len(rows) == 2  # concurrency 2
    claimed = [c for c in contacts if c.state == "dialing"]
    assert sorted(r.id for r in rows) == sorted(c.call_ids[-1] for c in claimed)
    for row in rows:
        contact = next(c for c in claimed if c.call_ids[-1] == row.id)
        assert (row.org_id, row.agent_id, row.agent_version) == (world.org_id, world.agent_id, 3)
        assert (row.bulk_call_id, row.bulk_contact_id) == (world.campaign_id, contact.id)
        assert row.status == CallStatus.QUEUED.value and row.carrier == "test-carrier"
        assert row.direction == Direction.OUTBOUND.value
        assert (row.from_number, row.to_number) == ("+15550100000", contact.phone_number)
        assert row.context == {**contact.variables, "attempt": 1}
        assert row.status_history == [[CallStatus.QUEUED.value, row.created_at.timestamp()]]
    assert {r.id for r, _ in world.announced} == {r.id for r in rows}
    assert {org for _, org in world.announced} == {world.org_id}
    assert [r.id for r in services.placed] == [r.id for r, _ in world.announced]
    async with world.sessions() as db:
        bc = await db.get(Campaign, world.campaign_id)
        assert (bc.queued, bc.in_progress) == (1, 2)


async def test_a_claim_that_fails_leaves_no_call_row_and_announces_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def counters_fail(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("counter update failed")

    # The counters move after the call rows were added: the whole claim rolls back.
    monkeypatch.setattr(dispatcher_module, "move", counters_fail)
    services = Services(world.store)
    disp = CampaignDispatcher(world.sessions, services, owner="d1")
    with pytest.raises(RuntimeError, match="counter update failed"):
        await disp.tick()
    assert await calls_of(world) == []
    assert all(c.state == "queued" and not c.call_ids for c in await contacts_of(world))
    assert world.announced == [] and services.placed == []


async def test_store_add_commits_with_the_callers_transaction(world: World) -> None:
    record = CallRecord(id="call_x", agent_id=world.agent_id, direction=Direction.INBOUND)
    async with world.sessions() as db:
        added = world.store.add(db, record, org_id=world.org_id)
        await db.rollback()
    assert await world.store.get("call_x") is None and world.announced == []
    async with world.sessions() as db:
        added = world.store.add(db, record, org_id=world.org_id, agent_version=3)
        await db.commit()
    await world.store.announce_created([added], world.org_id)
    stored = await world.store.get("call_x")
    assert stored == added and world.announced == [(added, world.org_id)]
