"""Post-call analysis and delivery, wired into the app.

``PostCall`` owns the status hook (outbox rows written in the transaction that ends
a call), the analysis and delivery workers, the egress policy for requests, and the
routes. ``api.app`` creates one and calls ``start``/``stop`` in its lifespan.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.calls.models import Call
from api.db.models import utcnow
from api.postcall import egress, policy
from api.postcall.analysis_worker import AnalysisWorker, load_spec
from api.postcall.delivery_worker import DeliveryWorker
from api.postcall.models import AnalysisJob, Delivery
from api.settings import ServerSettings
from gateway.calls import CallRecord, CallStatus
from voice_core.end_reasons import CallEnd, EndReason
from voice_core.engine import VoiceEngine

log = logging.getLogger(__name__)


def analysable(call: Call, status: CallStatus) -> bool:
    """Completed calls, and calls cut off by their process's death (what was said so far
    is worth a summary as much as a finished call's)."""
    if status == CallStatus.COMPLETED:
        return True
    end = CallEnd.parse(call.end_reason or "")
    return status == CallStatus.FAILED and end.reason is EndReason.INTERRUPTED


def has_conversation(call: Call) -> bool:
    return any(
        isinstance(line, dict) and line.get("speaker") == "caller" and line.get("text")
        for line in call.transcript or []
    )


class EgressPolicyMiddleware:
    """Makes the app's egress and tenant-secret settings visible to checks made while
    handling a request (an agent save runs them deep inside the agents route)."""

    def __init__(self, app: Any, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        s = self.settings
        token = egress.allow_private_targets.set(s.allow_private_delivery_targets)
        ports = egress.allowed_ports.set(tuple(s.egress_allowed_ports))
        current = policy.current_settings.set(s)
        try:
            await self.app(scope, receive, send)
        finally:
            policy.current_settings.reset(current)
            egress.allowed_ports.reset(ports)
            egress.allow_private_targets.reset(token)


class PostCall:
    def __init__(
        self,
        settings: ServerSettings,
        sessions: async_sessionmaker,
        engine: VoiceEngine,
        *,
        calls_in_progress: Callable[[], int],
        public_base_url: Callable[[], str | None],
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.deliveries = DeliveryWorker(sessions, settings, public_base_url)
        self.analysis = AnalysisWorker(
            sessions,
            settings,
            engine,
            calls_in_progress=calls_in_progress,
            on_done=self.deliveries.wake,
        )

    def mount(self, app: FastAPI) -> None:
        from api.postcall import routes as deliveries

        app.add_middleware(EgressPolicyMiddleware, settings=self.settings)
        app.include_router(deliveries.router)
        app.include_router(deliveries.webhooks_router)
        app.state.postcall = self

    def start(self) -> None:
        self.analysis.start()
        self.deliveries.start()

    async def stop(self) -> None:
        await self.deliveries.stop()
        await self.analysis.stop()

    async def on_status(
        self, db: AsyncSession, call: Call, old: CallStatus, new: CallStatus
    ) -> None:
        """Status hook (inside the transaction that ends the call): the analysis job and
        the outbox rows commit together with the final status, or not at all."""
        if not new.final:
            return
        try:
            spec = await load_spec(db, call)
        except Exception:
            # A stored spec that no longer validates must not keep the call from ending.
            log.exception("call %s: agent spec unreadable; no post-call work queued", call.id)
            return
        s = self.settings
        analyse = s.analysis_enabled and analysable(call, new) and has_conversation(call)
        now = utcnow()
        if analyse:
            db.add(AnalysisJob(call_id=call.id, org_id=call.org_id, next_attempt_at=now))
        for index, action in enumerate(spec.post_call_actions if spec else []):
            if new.value not in action.on_statuses:
                continue
            db.add(
                Delivery(
                    org_id=call.org_id,
                    call_id=call.id,
                    agent_id=call.agent_id,
                    action_index=index,
                    channel=action.channel,
                    event=f"call.{new.value}",
                    config=action.config,
                    # waiting: held for the analysis until it is done or this deadline
                    state="waiting" if analyse else "pending",
                    next_attempt_at=now + timedelta(seconds=s.analysis_wait_s if analyse else 0),
                    max_attempts=s.delivery_max_attempts,
                    created_at=now,
                    updated_at=now,
                )
            )

    def on_status_committed(self, record: CallRecord) -> None:
        """Status listener (after commit): wake the workers instead of waiting for a poll."""
        if record.status.final:
            self.analysis.wake()
            self.deliveries.wake()


def http_base(media_url: str | None) -> str | None:
    """``ws://host:port/media-stream`` -> ``http://host:port``: where this server is
    listening, for links in payloads when no VOXLINE_PUBLIC_URL is set."""
    if not media_url:
        return None
    scheme, _, rest = media_url.partition("://")
    return ("https" if scheme == "wss" else "http") + "://" + rest.split("/", 1)[0]
