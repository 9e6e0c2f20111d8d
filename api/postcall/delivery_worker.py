"""The outbox worker: sends due deliveries, records every attempt, retries with
exponential backoff and jitter, and dead-letters after ``max_attempts``.

At-least-once: a delivery is marked delivered only after its receiver said 2xx, so
a crash in between sends it again (receivers dedupe on the idempotency key, the
delivery id). Several processes may run this worker on one database; leases
(``api.leases``) keep them from sending one delivery at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.agents.models import Agent
from api.calls.models import Call
from api.db.models import Organization, utcnow
from api.postcall.channels import registry
from api.postcall.channels.base import DeliveryFailed, SendContext, SendResult
from api.postcall.leases import claim_due
from api.postcall.logsafe import safe_text
from api.postcall.models import AnalysisJob, Delivery, DeliveryAttempt
from api.postcall.payload import call_payload
from api.settings import ServerSettings

log = logging.getLogger(__name__)


def backoff_s(attempts: int, settings: ServerSettings, retry_after_s: float | None = None) -> float:
    """Delay before attempt ``attempts + 1``: base * 2^(attempts-1), capped, times a
    random factor in [0.5, 1) so receivers that failed together are not hit together
    again; never sooner than the receiver's Retry-After."""
    delay = min(
        settings.delivery_backoff_max_s, settings.delivery_backoff_base_s * 2 ** (attempts - 1)
    )
    delay *= random.uniform(0.5, 1.0)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, settings.delivery_backoff_max_s))
    return delay


def analysis_state(call: Call, job: AnalysisJob | None, wait_s: float) -> dict[str, Any]:
    """What the payload says about the analysis (``status`` and why)."""
    if job is None:
        if call.status != "completed":
            reason = f"the call ended {call.status}: there is no conversation to analyse"
        else:
            reason = "no conversation to analyse (or analysis is disabled)"
        return {"status": "skipped", "reason": reason, "problems": []}
    if job.state == "done":
        return {"status": "completed", "reason": None, "problems": job.problems or []}
    if job.state == "failed":
        return {"status": "failed", "reason": job.error, "problems": job.problems or []}
    return {
        "status": "pending",
        "reason": f"analysis not finished within {wait_s:g} s; sent without it",
        "problems": [],
    }


class DeliveryWorker:
    def __init__(
        self,
        sessions: async_sessionmaker,
        settings: ServerSettings,
        public_base_url: Callable[[], str | None],
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.public_base_url = public_base_url
        self.owner = f"dlv-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        # trust_env=False: a proxy from the environment would bypass the SSRF checks.
        self._http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self._task = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self) -> None:
        """Stop at once: whatever is in flight stays leased and is sent again by the next
        worker once its lease expires (the same as after a crash)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    async def _run(self) -> None:
        limit = asyncio.Semaphore(self.settings.delivery_concurrency)
        while True:
            claimed: list[str] = []
            try:
                free = self.settings.delivery_concurrency - len(self._inflight)
                if free > 0:
                    claimed = await claim_due(
                        self.sessions,
                        Delivery,
                        Delivery.id,
                        owner=self.owner,
                        lease_s=self.settings.delivery_lease_s,
                        limit=free,
                        due_states=("pending", "waiting"),
                        working_state="sending",
                    )
            except Exception:
                log.exception("delivery worker: claiming failed; trying again")
            for delivery_id in claimed:
                task = asyncio.create_task(self._guarded(limit, delivery_id))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            if not claimed:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.delivery_poll_s)
            else:
                await asyncio.sleep(0)

    async def _guarded(self, limit: asyncio.Semaphore, delivery_id: str) -> None:
        async with limit:
            try:
                await self.deliver(delivery_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The lease runs out and another attempt follows: never lost.
                log.exception("delivery %s: unexpected error", delivery_id)
            finally:
                self.wake()  # a slot is free

    async def deliver(self, delivery_id: str) -> None:
        """One attempt at one claimed delivery."""
        async with self.sessions() as db:
            delivery = await db.get(Delivery, delivery_id)
            if delivery is None or delivery.lease_owner != self.owner:
                return
            call = await db.get(Call, delivery.call_id)
            org = await db.get(Organization, delivery.org_id)
            job = await db.get(AnalysisJob, delivery.call_id)
            agent_name = (
                await db.execute(select(Agent.name).where(Agent.id == delivery.agent_id))
            ).scalar_one_or_none()
        assert call is not None and org is not None  # foreign keys, cascading deletes
        attempt = delivery.attempts + 1
        payload = call_payload(
            call,
            event=delivery.event,
            delivery_id=delivery.id,
            agent_name=agent_name,
            analysis=analysis_state(call, job, self.settings.analysis_wait_s),
            recording_url=self._recording_url(call),
        )
        ctx = SendContext(self.http_client(), self.settings, payload, org.webhook_secret, attempt)
        started = utcnow()
        t0 = time.perf_counter()
        failure: DeliveryFailed | None = None
        result = SendResult()
        try:
            result = await registry.send(delivery.channel, delivery.config, ctx)
        except DeliveryFailed as exc:
            failure = exc
        except Exception as exc:  # a bug in a channel: record it, retry like a failure
            log.exception("delivery %s: channel %s raised", delivery_id, delivery.channel)
            failure = DeliveryFailed(f"internal error: {type(exc).__name__}: {exc}")
        latency_ms = (time.perf_counter() - t0) * 1000
        await self._record(delivery, attempt, started, latency_ms, result, failure)

    def http_client(self) -> httpx.AsyncClient:
        if self._http is None:  # deliver() used without start() (tests, the retry route)
            self._http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._http

    def _recording_url(self, call: Call) -> str | None:
        base = self.public_base_url()
        if not call.recording_path or not base:
            return None
        return f"{base.rstrip('/')}/api/v1/calls/{call.id}/recording"

    async def _record(
        self,
        delivery: Delivery,
        attempt: int,
        started: Any,
        latency_ms: float,
        result: SendResult,
        failure: DeliveryFailed | None,
    ) -> None:
        now = utcnow()
        values: dict[str, Any] = {
            "attempts": attempt,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if failure is None:
            values |= {"state": "delivered", "delivered_at": now, "last_error": None}
        elif not failure.retryable or attempt >= delivery.max_attempts:
            why = "not retryable" if not failure.retryable else f"{attempt} attempts"
            values |= {"state": "dead", "last_error": f"{failure} (dead-lettered: {why})"}
            log.warning(
                "delivery %s dead-lettered: %s", delivery.id, safe_text(values["last_error"])
            )
        else:
            delay = backoff_s(attempt, self.settings, failure.retry_after_s)
            values |= {
                "state": "pending",
                "next_attempt_at": now + timedelta(seconds=delay),
                "last_error": str(failure),
            }
        async with self.sessions() as db:
            db.add(
                DeliveryAttempt(
                    delivery_id=delivery.id,
                    number=attempt,
                    started_at=started,
                    status_code=failure.status_code if failure else result.status_code,
                    latency_ms=round(latency_ms, 2),
                    error=None if failure is None else str(failure),
                    response_excerpt=failure.excerpt if failure else result.excerpt,
                )
            )
            # Only the lease holder moves the delivery on: if our lease ran out and
            # another worker took over, its outcome wins (the attempt is still logged).
            await db.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id, Delivery.lease_owner == self.owner)
                .values(**values)
            )
            await db.commit()
