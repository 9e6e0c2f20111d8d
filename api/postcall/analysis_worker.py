"""Runs analysis jobs one at a time, off the request path, and releases the call's
waiting deliveries when each finishes.

One at a time because the LLM and the CPU are shared with live calls; for the same
reason a job runs only while no live turn is using the models, and is cancelled and
run again when one starts (``voice_core.live_work``): a caller never hears a slower
reply because a finished call is being summarised. A job may wait for a quiet moment
as long as it takes (its lease is renewed meanwhile); it is never dropped for waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.agents.llm_policy import check_endpoint
from api.agents.models import Agent, AgentVersion
from api.agents.schemas import AgentSpec
from api.calls.models import Call
from api.db.models import utcnow
from api.postcall import egress
from api.postcall.analysis import Analyzer, Endpoint, LLMUnavailable, Variable, apply_flow
from api.postcall.leases import claim_due
from api.postcall.logsafe import safe_text
from api.postcall.models import AnalysisJob, Delivery
from api.settings import ServerSettings
from voice_core.config import LLMConfig
from voice_core.engine import VoiceEngine

log = logging.getLogger(__name__)


def _age_s(t: datetime) -> float:
    if t.tzinfo is None:  # SQLite gives naive datetimes back; they were stored as UTC
        t = t.replace(tzinfo=UTC)
    return max(0.0, (utcnow() - t).total_seconds())


async def load_spec(db, call: Call) -> AgentSpec | None:  # type: ignore[no-untyped-def]
    """The agent as it was when the call was placed (its version), else as it is now."""
    if call.agent_id is None:
        return None
    data = None
    if call.agent_version is not None:
        data = (
            await db.execute(
                select(AgentVersion.spec).where(
                    AgentVersion.agent_id == call.agent_id,
                    AgentVersion.version == call.agent_version,
                )
            )
        ).scalar_one_or_none()
    if data is None:
        data = (
            await db.execute(select(Agent.spec).where(Agent.id == call.agent_id))
        ).scalar_one_or_none()
    return None if data is None else AgentSpec.model_validate(data)


class AnalysisWorker:
    def __init__(
        self,
        sessions: async_sessionmaker,
        settings: ServerSettings,
        engine: VoiceEngine,
        *,
        calls_in_progress: Callable[[], int],
        on_done: Callable[[], None],
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.engine = engine
        self.calls_in_progress = calls_in_progress
        self.on_done = on_done
        self.analyzer = Analyzer(timeout_s=settings.analysis_timeout_s)
        self.model_errors = 0  # failed analysis requests (the endpoint, not junk): /metrics
        # (seconds from the call's end to its analysis, seconds the analysis took): /metrics
        self.on_analysed: Callable[[float, float], None] = lambda _wait_s, _run_s: None
        self.owner = f"ana-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="analysis-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.analyzer.aclose()

    def _lease_s(self) -> float:
        return 2 * self.settings.analysis_timeout_s + 30

    async def _run(self) -> None:
        while True:
            claimed: list[str] = []
            try:
                claimed = await claim_due(
                    self.sessions,
                    AnalysisJob,
                    AnalysisJob.call_id,
                    owner=self.owner,
                    lease_s=self._lease_s(),
                    limit=1,
                    due_states=("pending",),
                    working_state="running",
                )
                for call_id in claimed:
                    await self.run_job(call_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("analysis worker: a job failed unexpectedly; its lease will expire")
            if not claimed:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.delivery_poll_s)

    async def _keep_lease(self, call_id: str) -> None:
        """Renew the job's lease while it waits for (or runs in) a quiet moment, so no
        other worker takes it over for being slow."""
        lease_s = self._lease_s()
        while True:
            await asyncio.sleep(lease_s / 3)
            async with self.sessions() as db:
                await db.execute(
                    update(AnalysisJob)
                    .where(AnalysisJob.call_id == call_id, AnalysisJob.lease_owner == self.owner)
                    .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
                )
                await db.commit()

    async def run_job(self, call_id: str) -> None:
        async with self.sessions() as db:
            job = await db.get(AnalysisJob, call_id)
            call = await db.get(Call, call_id)
            if job is None or call is None or job.lease_owner != self.owner:
                return
            spec = await load_spec(db, call)
            flow_outcome = dict(call.flow) if call.flow else None
        variables = [
            Variable(v.key, v.description, v.type, v.enum)
            for v in (spec.extraction if spec else [])
        ]
        if spec is not None:
            try:  # the agent's endpoint, checked again now (DNS may have changed)
                await check_endpoint(spec.llm.base_url, self.settings)
            except egress.BlockedTarget as exc:
                await self._failed_attempt(job, f"LLM endpoint refused: {exc}")
                return
        # a tenant endpoint gets its own key or a placeholder, never the operator's
        llm_cfg = spec.to_agent_config(settings=self.settings).llm if spec else LLMConfig()
        try:
            llm = self.engine.llm_for(llm_cfg)  # the agent's own endpoint, or the default
            endpoint = Endpoint(
                base_url=llm.base_url,  # type: ignore[attr-defined]
                model=llm.model,  # type: ignore[attr-defined]
                api_key=llm_cfg.api_key or self.settings.engine.llm_api_key,
            )
            transcript = list(call.transcript or [])
            lease = asyncio.create_task(self._keep_lease(call_id))
            try:
                result = await self.engine.live_work.run_in_background(
                    lambda: self.analyzer.analyze(
                        endpoint,
                        transcript,
                        variables,
                        max_chars=self.settings.analysis_max_transcript_chars,
                    ),
                    quiet_s=self.settings.analysis_live_quiet_s,
                )
            finally:
                lease.cancel()
        except (LLMUnavailable, RuntimeError) as exc:
            self.model_errors += 1
            await self._failed_attempt(job, str(exc))
            return
        result = apply_flow(result, flow_outcome)
        if job.created_at is not None:
            self.on_analysed(_age_s(job.created_at), result.latency_ms / 1000)
        if result.problems:
            log.info("analysis of %s: stored nulls for: %s", call_id, "; ".join(result.problems))
        now = utcnow()
        async with self.sessions() as db:
            await db.execute(
                update(Call)
                .where(Call.id == call_id)
                .values(
                    summary=result.summary,
                    sentiment=result.sentiment,
                    extracted=result.extracted,
                )
            )
            await db.execute(
                update(AnalysisJob)
                .where(AnalysisJob.call_id == call_id)
                .values(
                    state="done",
                    attempts=job.attempts + 1,
                    finished_at=now,
                    latency_ms=round(result.latency_ms, 1),
                    model=result.model,
                    problems=result.problems,
                    error=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            await self._release_deliveries(db, call_id)
            await db.commit()
        log.info("analysed %s in %.0f ms", call_id, result.latency_ms)
        self.on_done()

    async def _failed_attempt(self, job: AnalysisJob, error: str) -> None:
        attempts = job.attempts + 1
        now = utcnow()
        give_up = attempts >= self.settings.analysis_max_attempts
        async with self.sessions() as db:
            await db.execute(
                update(AnalysisJob)
                .where(AnalysisJob.call_id == job.call_id)
                .values(
                    state="failed" if give_up else "pending",
                    attempts=attempts,
                    next_attempt_at=now + timedelta(seconds=5 * 2**attempts),
                    finished_at=now if give_up else None,
                    error=error,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            if give_up:
                await self._release_deliveries(db, job.call_id)
            await db.commit()
        log.warning(
            "analysis of %s failed (attempt %d): %s", job.call_id, attempts, safe_text(error)
        )
        if give_up:
            self.on_done()

    @staticmethod
    async def _release_deliveries(db, call_id: str) -> None:  # type: ignore[no-untyped-def]
        await db.execute(
            update(Delivery)
            .where(Delivery.call_id == call_id, Delivery.state == "waiting")
            .values(state="pending", next_attempt_at=utcnow())
        )
