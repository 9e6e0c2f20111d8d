"""What ``/metrics`` reports, in one registry per app (tests run several apps at once).

Per-turn latency comes from the engine's ``TurnMetrics`` events (an event observer on
every transport); call ends from ``CallEnded``. Everything that is a level rather than
an event (calls in progress, queue depths, background-job lag, the outbox) is read at
scrape time, so it is never stale and costs nothing between scrapes. Outbox and job
counts come from the database: they are the fleet's, not only this process's.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.db.models import utcnow
from api.postcall.models import AnalysisJob, Delivery
from gateway.bridge import CallRegistry
from voice_core.end_reasons import CallEnd
from voice_core.engine import VoiceEngine
from voice_core.events import CallEnded, SessionEvent, TurnMetrics

_MAX_TRACKED_CALLS = 10_000

# Seconds. The response budget is ~0.2-0.7 s; the tail that matters goes to several
# seconds (a caller hears silence), so the buckets are dense below 1 s and sparse above.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
JOB_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
STAGES = ("endpointing_wait", "stt", "llm_first_token", "first_clause", "tts_first_audio")


def _age_s(t: datetime | None, now: datetime) -> float:
    if t is None:
        return 0.0
    if t.tzinfo is None:  # SQLite returns naive datetimes; they were stored as UTC
        t = t.replace(tzinfo=UTC)
    return max(0.0, (now - t).total_seconds())


@dataclass
class _Snapshot:
    """The database's part, read by ``refresh`` before each scrape."""

    analysis: dict[str, int] = field(default_factory=dict)
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)
    analysis_lag_s: float = 0.0
    delivery_lag_s: float = 0.0


class VoxlineMetrics(Collector):
    def __init__(
        self,
        *,
        engine: VoiceEngine,
        calls: CallRegistry,
        sessions: async_sessionmaker,
        analysis_errors: Callable[[], int] = lambda: 0,
    ) -> None:
        self.engine = engine
        self.calls = calls
        self.sessions = sessions
        self.analysis_errors = analysis_errors
        # Each live call's transport, kept from its first event: the registry may drop
        # the call before its CallEnded reaches us, which would count it as "unknown".
        self._transports: OrderedDict[str, str] = OrderedDict()
        self.registry = CollectorRegistry(auto_describe=True)
        self._snapshot = _Snapshot()
        r = self.registry
        self.response = Histogram(
            "voxline_turn_response_seconds",
            "end-of-turn decision -> first agent audio handed to the transport",
            ["transport"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.voice_to_voice = Histogram(
            "voxline_turn_voice_to_voice_seconds",
            "caller's last voiced frame -> first agent audio handed to the transport",
            ["transport"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "voxline_turn_stage_seconds",
            "one pipeline stage of a turn (see voice_core/metrics.py)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.calls_ended = Counter(
            "voxline_calls_ended",
            "calls ended, by transport and end reason (error means a stage failed)",
            ["transport", "reason"],
            registry=r,
        )
        self.analysis_wait = Histogram(
            "voxline_analysis_wait_seconds",
            "a call's end -> its post-call analysis done (waiting for quiet models included)",
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.analysis_duration = Histogram(
            "voxline_analysis_duration_seconds",
            "the analysis request itself (the run that was let finish)",
            buckets=JOB_BUCKETS,
            registry=r,
        )
        r.register(self)

    # ------------------------------------------------------------ events

    def observe(self, call_id: str, event: SessionEvent) -> None:
        """An ``EventObserver`` for every transport gateway."""
        if isinstance(event, CallEnded):
            reason = CallEnd.parse(event.reason).reason.value
            transport = self._transports.pop(call_id, None) or self._registered(call_id)
            self.calls_ended.labels(transport, reason).inc()
            return
        transport = self._transport(call_id)  # remembered while the call is registered
        if isinstance(event, TurnMetrics):
            stages = event.stages_ms
            if "response" in stages:
                self.response.labels(transport).observe(stages["response"] / 1000)
            if "voice_to_voice" in stages:
                self.voice_to_voice.labels(transport).observe(stages["voice_to_voice"] / 1000)
            for name in STAGES:
                if name in stages:
                    self.stage.labels(name).observe(stages[name] / 1000)

    def analysed(self, wait_s: float, run_s: float) -> None:
        self.analysis_wait.observe(wait_s)
        self.analysis_duration.observe(run_s)

    def _transport(self, call_id: str) -> str:
        known = self._transports.get(call_id)
        if known is not None:
            return known
        transport = self._registered(call_id)
        if transport != "unknown":
            self._transports[call_id] = transport
            while len(self._transports) > _MAX_TRACKED_CALLS:  # calls that never ended
                self._transports.popitem(last=False)
        return transport

    def _registered(self, call_id: str) -> str:
        call = self.calls.get(call_id)
        return call.transport if call is not None else "unknown"

    # ------------------------------------------------------------ levels

    async def refresh(self) -> None:
        """Read the database's part of the next scrape."""
        now = utcnow()
        snap = _Snapshot()
        async with self.sessions() as db:
            rows = await db.execute(
                select(AnalysisJob.state, func.count()).group_by(AnalysisJob.state)
            )
            snap.analysis = {state: n for state, n in rows.all()}
            rows = await db.execute(
                select(Delivery.state, Delivery.channel, func.count()).group_by(
                    Delivery.state, Delivery.channel
                )
            )
            snap.deliveries = {(state, channel): n for state, channel, n in rows.all()}
            oldest_job = await db.scalar(
                select(func.min(AnalysisJob.created_at)).where(
                    AnalysisJob.state.in_(("pending", "running"))
                )
            )
            oldest_due = await db.scalar(
                select(func.min(Delivery.next_attempt_at)).where(
                    Delivery.state.in_(("pending", "sending")), Delivery.next_attempt_at <= now
                )
            )
        snap.analysis_lag_s = _age_s(oldest_job, now)
        snap.delivery_lag_s = _age_s(oldest_due, now)
        self._snapshot = snap

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot
        active = GaugeMetricFamily(
            "voxline_active_calls", "calls this process carries", labels=["transport"]
        )
        per_transport: dict[str, int] = {}
        for call in self.calls.of(None).values():
            per_transport[call.transport] = per_transport.get(call.transport, 0) + 1
        for transport in sorted(per_transport):
            active.add_metric([transport], per_transport[transport])
        yield active

        queues = GaugeMetricFamily(
            "voxline_queue_depth", "work waiting in a queue", labels=["queue"]
        )
        scheduler: Any = getattr(self.engine.stt, "scheduler", None)
        if scheduler is not None:
            queues.add_metric(["stt_decode"], scheduler.queued)
        pending = sum(
            n
            for (state, _), n in snap.deliveries.items()
            if state in ("pending", "waiting", "sending")
        )
        queues.add_metric(["postcall_outbox"], pending)
        queues.add_metric(
            ["analysis"], snap.analysis.get("pending", 0) + snap.analysis.get("running", 0)
        )
        yield queues

        live = self.engine.live_work
        yield GaugeMetricFamily(
            "voxline_live_model_work_in_flight",
            "live turns' model steps running now (STT final, LLM, TTS)",
            value=live.in_flight,
        )
        yield CounterMetricFamily(
            "voxline_background_preemptions",
            "background jobs cancelled (to be rerun) because a live turn started",
            value=live.preemptions,
        )

        lag = GaugeMetricFamily(
            "voxline_background_job_lag_seconds",
            "age of the oldest unfinished analysis job / the oldest due delivery",
            labels=["job"],
        )
        lag.add_metric(["analysis"], snap.analysis_lag_s)
        lag.add_metric(["delivery"], snap.delivery_lag_s)
        yield lag

        jobs = GaugeMetricFamily(
            "voxline_analysis_jobs", "post-call analysis jobs by state", labels=["state"]
        )
        for state in ("pending", "running", "done", "failed"):
            jobs.add_metric([state], snap.analysis.get(state, 0))
        yield jobs

        outcomes = GaugeMetricFamily(
            "voxline_deliveries",
            "post-call deliveries by state (delivered and dead are outcomes) and channel",
            labels=["state", "channel"],
        )
        for (state, channel), n in sorted(snap.deliveries.items()):
            outcomes.add_metric([state, channel], n)
        yield outcomes

        errors = CounterMetricFamily(
            "voxline_model_errors",
            "model requests that failed: live stages (stt, llm) and post-call analysis",
            labels=["stage"],
        )
        for stage in ("stt", "llm"):
            errors.add_metric([stage], live.errors.get(stage, 0))
        errors.add_metric(["analysis"], self.analysis_errors())
        yield errors

        yield GaugeMetricFamily(
            "voxline_metrics_scrape_timestamp_seconds",
            "when these levels were read",
            value=time.time(),
        )
