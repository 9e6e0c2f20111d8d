"""Campaign benchmarks: live-status latency by campaign size, dispatcher overhead.

    python -m benchmarks.campaign [--sizes 10000 100000 1000000] [--pg URL]

Live status reads maintained counters by primary key, so its cost should not grow
with the number of contacts; this measures that claim on SQLite and PostgreSQL.
Dispatcher overhead: contacts dialed per second through the real dispatcher
(claim with lease, call row, outcome hook, counters) with a carrier that answers
"busy" at once, i.e. everything but the phone call itself.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from sqlalchemy import insert, update

from api.agents.models import Agent
from api.auth import create_organization
from api.calls.store import SqlCallStore
from api.campaigns.dispatcher import CampaignDispatcher, on_call_status, summary
from api.campaigns.models import Campaign, CampaignContact
from api.campaigns.routes import load_bulk
from api.db.engine import create_engine, migrate, session_factory
from benchmarks.stats import machine, publish
from benchmarks.stats import summary as stats
from gateway.calls import CallStatus

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def pg_database() -> str | None:
    try:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN.replace("postgresql://", "postgres://"), timeout=3)
    except Exception:
        return None
    name = f"voxline_bench_{uuid.uuid4().hex[:8]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def drop_pg(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN.replace("postgresql://", "postgres://"), timeout=3)
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


async def setup(url: str) -> tuple[Any, Any, str, str]:
    await migrate(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as db:
        org = await create_organization(db, "bench")
        agent = Agent(org_id=org.id, name="bench", spec={"name": "bench"})
        db.add(agent)
        await db.commit()
        return engine, sessions, org.id, agent.id


async def campaign_with(sessions, org_id: str, agent_id: str, n: int) -> tuple[int, float]:
    now = datetime.now(UTC)
    async with sessions() as db:
        bc = Campaign(
            org_id=org_id,
            agent_id=agent_id,
            name=f"{n}",
            status="paused",
            concurrency=10,
            retry={},
            created_at=now,
            updated_at=now,
        )
        db.add(bc)
        await db.commit()
        bc_id = bc.id
    t = time.perf_counter()
    batch = 20_000
    for start in range(0, n, batch):
        rows = [
            {
                "bulk_call_id": bc_id,
                "phone_number": f"+1{5550000000 + i}",
                "variables": {},
                "state": "queued",
                "bucket": "queued",
                "attempts": 0,
                "call_ids": [],
                "created_at": now,
                "updated_at": now,
            }
            for i in range(start, min(n, start + batch))
        ]
        async with sessions() as db:
            await db.execute(insert(CampaignContact), rows)
            await db.commit()
    async with sessions() as db:
        await db.execute(
            update(Campaign).where(Campaign.id == bc_id).values(total_contacts=n, queued=n)
        )
        await db.commit()
    return bc_id, time.perf_counter() - t


async def live_status_ms(sessions, org_id: str, bc_id: int, reps: int = 200) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        async with sessions() as db:
            bc = await load_bulk(db, org_id, bc_id)
            body = {
                "status": "success",
                "bulk_call_id": bc.id,
                "campaign_status": bc.status,
                "summary": summary(bc),
            }
        out.append((time.perf_counter() - t) * 1000)
        assert body["summary"]["total_contacts"] >= 0
    return out


@dataclass
class InstantBusyCarrier:
    """Answers every call 'busy' at once: what is left is the dispatcher's own work."""

    store: Any
    name: str = "bench"

    async def place_call(self, **kw: Any) -> str:
        await self.store.set_status(kw["call_id"], CallStatus.BUSY, reason="bench")
        return "bench"


@dataclass
class Services:
    store: Any
    carrier: Any
    settings_default_from: str | None = None

    async def place_call(self, record) -> str:  # type: ignore[no-untyped-def]
        return await self.carrier.place_call(call_id=record.id)


async def dispatcher_rate(sessions, org_id: str, agent_id: str, n: int) -> float:
    store = SqlCallStore(sessions, default_org_id=org_id)
    store.status_hooks.append(on_call_status)
    services = Services(store, InstantBusyCarrier(store))
    bc_id, _ = await campaign_with(sessions, org_id, agent_id, n)
    async with sessions() as db:
        await db.execute(
            update(Campaign)
            .where(Campaign.id == bc_id)
            .values(status="in_progress", concurrency=50, retry={"on": []})
        )
        await db.commit()
    disp = CampaignDispatcher(sessions, services, tick_s=0.01, org_max_concurrent=1000)
    store.status_listeners.append(lambda _r: disp.wake())
    t = time.perf_counter()
    disp.start()
    while True:
        async with sessions() as db:
            bc = await db.get(Campaign, bc_id)
            if bc.status == "completed":
                break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t
    await disp.stop()
    return n / elapsed


async def run(args: argparse.Namespace) -> dict:
    results: dict[str, Any] = {
        "machine": machine(),
        "live_status_ms": {},
        "insert_s": {},
        "dispatcher_contacts_per_s": {},
    }
    with TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        pg = args.pg or await pg_database()
        if pg:
            targets.append(("postgresql", pg))
        for name, url in targets:
            engine, sessions, org_id, agent_id = await setup(url)
            try:
                for n in args.sizes:
                    bc_id, insert_s = await campaign_with(sessions, org_id, agent_id, n)
                    results["insert_s"][f"{name}:{n}"] = round(insert_s, 1)
                    results["live_status_ms"][f"{name}:{n}"] = stats(
                        await live_status_ms(sessions, org_id, bc_id)
                    )
                    print(name, n, results["live_status_ms"][f"{name}:{n}"], flush=True)
                rate = await dispatcher_rate(sessions, org_id, agent_id, args.dispatch_n)
                results["dispatcher_contacts_per_s"][name] = round(rate, 1)
                print(name, "dispatcher", rate, "contacts/s", flush=True)
            finally:
                await engine.dispose()
                if name == "postgresql" and not args.pg:
                    await drop_pg(url)
    return results


def to_markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"# Campaign benchmarks — {m['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores. Live status = one primary-key read of "
        "maintained counters (the whole endpoint body), 200 reads each.",
        "",
        "| database:contacts | p50 ms | p95 ms | max ms | insert s |",
        "|---|---|---|---|---|",
    ]
    for key, s in r["live_status_ms"].items():
        lines.append(f"| {key} | {s['p50']} | {s['p95']} | {s['max']} | {r['insert_s'][key]} |")
    lines += [
        "",
        "Dispatcher overhead (claim + lease, call row, outcome hook, counters; "
        "carrier answers busy at once):",
        "",
    ]
    for db, rate in r["dispatcher_contacts_per_s"].items():
        lines.append(f"- {db}: {rate} contacts/s ({1000 / rate:.1f} ms per dialed contact)")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--dispatch-n", type=int, default=500)
    p.add_argument("--pg", help="a PostgreSQL URL to use (default: a throwaway database)")
    args = p.parse_args()
    r = asyncio.run(run(args))
    md = to_markdown(r)
    publish("campaign", r, md)


if __name__ == "__main__":
    main()
