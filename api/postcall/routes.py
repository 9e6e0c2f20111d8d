"""/api/v1/deliveries (the outbox, with every attempt) and /api/v1/webhooks/test."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.agents.schemas import AgentSpec
from api.agents.service import load_agent
from api.auth import Principal, get_db, require_key
from api.db.models import Organization, utcnow
from api.errors import AUTHED, WITH_BODY, check_one_of, error_responses, field_error
from api.postcall import egress
from api.postcall.channels import webhook
from api.postcall.channels.base import DeliveryFailed, SendContext
from api.postcall.delivery_config import WebhookConfig
from api.postcall.models import Delivery, DeliveryAttempt
from api.postcall.payload import sample_payload, template_context
from api.postcall.templates import TemplateFailed, render
from api.schemas import OptionalId, ResourceId, UtcDateTime

router = APIRouter(
    prefix="/api/v1/deliveries", tags=["deliveries"], responses=error_responses(*AUTHED)
)
webhooks_router = APIRouter(
    prefix="/api/v1/webhooks", tags=["deliveries"], responses=error_responses(*AUTHED)
)

Db = Annotated[AsyncSession, Depends(get_db)]
Auth = Annotated[Principal, Depends(require_key)]
STATES = ("waiting", "pending", "sending", "delivered", "dead")


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


class AttemptOut(BaseModel):
    number: int
    started_at: UtcDateTime
    status_code: int | None
    latency_ms: float
    error: str | None
    response_excerpt: str | None


class DeliveryOut(BaseModel):
    id: str
    call_id: str
    agent_id: str | None
    channel: str
    action_index: int
    event: str
    state: Literal["waiting", "pending", "sending", "delivered", "dead"]
    attempts: int
    max_attempts: int
    next_attempt_at: UtcDateTime | None
    created_at: UtcDateTime
    delivered_at: UtcDateTime | None
    last_error: str | None
    attempt_log: list[AttemptOut]


def delivery_out(d: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        call_id=d.call_id,
        agent_id=d.agent_id,
        channel=d.channel,
        action_index=d.action_index,
        event=d.event,
        state=d.state,  # type: ignore[arg-type]
        attempts=d.attempts,
        max_attempts=d.max_attempts,
        next_attempt_at=_aware(d.next_attempt_at) if d.state in ("waiting", "pending") else None,
        created_at=_aware(d.created_at),  # type: ignore[arg-type]
        delivered_at=_aware(d.delivered_at),
        last_error=d.last_error,
        attempt_log=[
            AttemptOut(
                number=a.number,
                started_at=_aware(a.started_at),  # type: ignore[arg-type]
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                error=a.error,
                response_excerpt=a.response_excerpt,
            )
            for a in sorted(attempts, key=lambda a: (a.number, a.id))
        ],
    )


async def _with_attempts(db: AsyncSession, rows: list[Delivery]) -> list[DeliveryOut]:
    by_delivery: dict[str, list[DeliveryAttempt]] = {d.id: [] for d in rows}
    if rows:
        attempts = (
            await db.execute(
                select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(list(by_delivery)))
            )
        ).scalars()
        for a in attempts:
            by_delivery[a.delivery_id].append(a)
    return [delivery_out(d, by_delivery[d.id]) for d in rows]


async def _load(db: AsyncSession, org_id: str, delivery_id: str) -> Delivery:
    row = (
        await db.execute(
            select(Delivery).where(Delivery.id == delivery_id, Delivery.org_id == org_id)
        )
    ).scalar_one_or_none()
    if row is None:
        raise HTTPException(404, detail=f"delivery {delivery_id!r} not found")
    return row


@router.get("", response_model=list[DeliveryOut])
async def list_deliveries(
    db: Db,
    who: Auth,
    call_id: OptionalId = None,
    state: Annotated[str | None, Query(description="one of " + ", ".join(STATES))] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DeliveryOut]:
    check_one_of(state, "state", STATES)
    q = select(Delivery).where(Delivery.org_id == who.org_id)
    if call_id:
        q = q.where(Delivery.call_id == call_id)
    if state:
        q = q.where(Delivery.state == state)
    q = q.order_by(Delivery.created_at.desc(), Delivery.action_index).limit(limit)
    return await _with_attempts(db, list((await db.execute(q)).scalars()))


@router.get("/{delivery_id}", response_model=DeliveryOut, responses=error_responses(404))
async def get_delivery(delivery_id: ResourceId, db: Db, who: Auth) -> DeliveryOut:
    return (await _with_attempts(db, [await _load(db, who.org_id, delivery_id)]))[0]


@router.post(
    "/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
    responses=error_responses(404, 409),
)
async def retry_delivery(
    delivery_id: ResourceId, request: Request, db: Db, who: Auth
) -> DeliveryOut:
    """Send again now, with a fresh attempt budget (a delivered one is re-sent too:
    receivers dedupe on the idempotency key, which stays the same)."""
    row = await _load(db, who.org_id, delivery_id)
    lease = _aware(row.lease_expires_at)
    if row.state == "sending" and lease is not None and lease > utcnow():
        raise HTTPException(409, detail=f"delivery {delivery_id!r} is being sent right now")
    settings = request.app.state.settings
    row.state = "pending"
    row.next_attempt_at = utcnow()
    row.max_attempts = row.attempts + settings.delivery_max_attempts
    row.lease_owner = None
    row.lease_expires_at = None
    row.updated_at = utcnow()
    await db.commit()
    request.app.state.postcall.deliveries.wake()
    return (await _with_attempts(db, [row]))[0]


class WebhookTest(BaseModel):
    url: str = Field(max_length=2000)
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    payload_template: str | None = None
    content_type: str | None = None
    agent_id: str | None = Field(
        None, description="use this agent's extraction keys in the sample payload"
    )


class WebhookTestResult(BaseModel):
    ok: bool
    status_code: int | None
    latency_ms: float
    response_excerpt: str | None
    error: str | None
    request: dict[str, Any]


@webhooks_router.post(
    "/test", response_model=WebhookTestResult, responses=error_responses(404, *WITH_BODY)
)
async def test_webhook(body: WebhookTest, request: Request, db: Db, who: Auth) -> WebhookTestResult:
    """Send one signed sample payload to ``url`` now (no retries) and show what the
    receiver answered: try a receiver before pointing an agent at it."""
    try:
        config = WebhookConfig.model_validate(body.model_dump(exclude={"agent_id"}))
    except ValidationError as exc:
        e = exc.errors()[0]
        raise field_error(".".join(str(p) for p in e["loc"]), e["msg"], kind=e["type"]) from exc
    extraction: list[Any] = []
    agent_name = "Sample agent"
    if body.agent_id:
        agent = await load_agent(db, who.org_id, body.agent_id)
        spec = AgentSpec.model_validate(agent.spec)
        extraction, agent_name = spec.extraction, spec.name
    payload = sample_payload(extraction, agent_name)
    payload["event"] = "webhook.test"
    payload["delivery_id"] = f"dlv_test_{int(time.time())}"
    settings = request.app.state.settings
    if config.payload_template is not None:
        try:
            await render(
                config.payload_template,
                template_context(payload),
                timeout_s=settings.template_timeout_s,
                max_chars=settings.template_max_output_chars,
            )
        except TemplateFailed as exc:
            raise field_error(
                "payload_template", f"template error: {exc}", kind="template"
            ) from exc
    try:
        await egress.check_url(
            config.url, settings.allow_private_delivery_targets, settings.egress_allowed_ports
        )
    except egress.BlockedTarget as exc:
        raise field_error("url", f"refused: {exc}", kind="ssrf") from exc
    org = await db.get(Organization, who.org_id)
    assert org is not None
    secret = org.webhook_secret  # with the previous one during a rotation's overlap
    postcall = request.app.state.postcall
    ctx = SendContext(postcall.deliveries.http_client(), settings, payload, secret, 1)
    await ctx.prerender(config)
    described = webhook.describe_request(config, ctx)
    t0 = time.perf_counter()
    try:
        result = await webhook.send(config, ctx)
        status, excerpt, error = result.status_code, result.excerpt, None
    except DeliveryFailed as exc:
        status, excerpt, error = exc.status_code, exc.excerpt, str(exc)
    return WebhookTestResult(
        ok=error is None,
        status_code=status,
        latency_ms=round((time.perf_counter() - t0) * 1000, 2),
        response_excerpt=excerpt,
        error=error,
        request={"method": config.method, "url": config.url, **described},
    )
