"""/api/v1/calls: dispatch, call log (filters, cursor pages), detail, recording, hang-up."""

from __future__ import annotations

import base64
import logging
import os
import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.agents.phone_numbers import check_from_number
from api.agents.service import load_agent
from api.auth import Principal, get_db, require_key
from api.calls.models import Call
from api.calls.schemas import (
    DEFAULT_BRIEFING,
    CallDetail,
    CallOut,
    CallPage,
    DispatchRequest,
    DispatchResponse,
    DtmfRequest,
    DtmfResponse,
    HangupResponse,
    TransferRequest,
    TransferResponse,
    status_changes,
)
from api.errors import AUTHED, WITH_BODY, check_one_of, error_responses, field_error
from api.idempotency.replay import Idempotent
from api.schemas import CALL_STATUSES, ID_PATTERN, MAX_ROW_ID, OptionalId, ResourceId
from gateway.calls import CallRecord, CallStatus, Direction, new_call_id
from gateway.carriers import CarrierError
from gateway.transfer import CarrierActions, UnsupportedAction
from gateway.whatsapp.calls import CARRIER as WHATSAPP

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/calls", tags=["calls"], responses=error_responses(*AUTHED))

Db = Annotated[AsyncSession, Depends(get_db)]
Auth = Annotated[Principal, Depends(require_key)]

DEFAULT_FROM = "+15550100000"


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


def call_out(row: Call) -> dict:
    answered, ended = _aware(row.answered_at), _aware(row.ended_at)
    return {
        "id": row.id,
        "agent_id": row.agent_id,
        "agent_version": row.agent_version,
        "bulk_call_id": row.bulk_call_id,
        "direction": row.direction,
        "from_number": row.from_number,
        "to_number": row.to_number,
        "status": row.status,
        "end_reason": row.end_reason,
        "created_at": _aware(row.created_at),
        "answered_at": answered,
        "ended_at": ended,
        "duration_s": round((ended - answered).total_seconds(), 3) if answered and ended else None,
        "call_context": row.context or {},
    }


def has_recording(row: Call) -> bool:
    # A stat on a local file: not worth a thread hop.
    return bool(row.recording_path) and os.path.isfile(row.recording_path)


async def load_call(db: AsyncSession, org_id: str, call_id: str) -> Call:
    row = (
        await db.execute(select(Call).where(Call.id == call_id, Call.org_id == org_id))
    ).scalar_one_or_none()
    if row is None:
        raise HTTPException(404, detail=f"call {call_id!r} not found")
    return row


@router.post(
    "/dispatch",
    status_code=201,
    response_model=DispatchResponse,
    dependencies=[Idempotent],
    responses=error_responses(404, 409, *WITH_BODY, 502),
)
async def dispatch(body: DispatchRequest, request: Request, db: Db, who: Auth) -> DispatchResponse:
    services = request.app.state.voxline
    agent = await load_agent(db, who.org_id, body.agent_id)
    await check_from_number(db, who.org_id, body.from_number)  # only the org's own numbers
    call_id = new_call_id()
    from_number = body.from_number or services.settings_default_from or DEFAULT_FROM
    record = CallRecord(
        id=call_id,
        agent_id=agent.id,
        direction=Direction.OUTBOUND,
        from_number=from_number,
        to_number=body.to_number,
        # The channel lives in the record as its carrier: place_call dials by it.
        carrier=WHATSAPP if body.channel == "whatsapp" else services.carrier.name,
        context=body.call_context,
    )
    # The record exists before the carrier is asked: whatever happens next is logged on it.
    await services.store.create(record, org_id=who.org_id, agent_version=agent.version)
    try:
        await services.place_call(record)
    except CarrierError as exc:
        await services.store.set_status(call_id, CallStatus.FAILED, reason=f"carrier:{exc}")
        raise HTTPException(502, detail=f"carrier refused the call: {exc}") from exc
    return DispatchResponse(call_id=call_id, status="queued")


def _encode_cursor(row: Call) -> str:
    raw = f"{_aware(row.created_at).isoformat()}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, call_id = raw.split("|", 1)
        if not re.match(ID_PATTERN, call_id):
            raise ValueError(call_id)
        return _aware(datetime.fromisoformat(ts)), call_id
    except Exception as exc:
        raise field_error("cursor", "invalid cursor", where="query") from exc


@router.get("", response_model=CallPage)
async def list_calls(
    db: Db,
    who: Auth,
    status: Annotated[str | None, Query(description="one of " + ", ".join(CALL_STATUSES))] = None,
    agent_id: OptionalId = None,
    bulk_call_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> CallPage:
    check_one_of(status, "status", CALL_STATUSES)
    q = select(Call).where(Call.org_id == who.org_id)
    if status:
        q = q.where(Call.status == status)
    if agent_id:
        q = q.where(Call.agent_id == agent_id)
    if bulk_call_id is not None:
        q = q.where(Call.bulk_call_id == bulk_call_id)
    if created_after:
        q = q.where(Call.created_at >= _aware(created_after))
    if created_before:
        q = q.where(Call.created_at < _aware(created_before))
    if cursor:
        ts, last_id = _decode_cursor(cursor)
        q = q.where(or_(Call.created_at < ts, and_(Call.created_at == ts, Call.id < last_id)))
    q = q.order_by(Call.created_at.desc(), Call.id.desc()).limit(limit + 1)
    rows = list((await db.execute(q)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return CallPage(
        data=[CallOut(**call_out(r)) for r in rows],
        next_cursor=_encode_cursor(rows[-1]) if more and rows else None,
    )


@router.get("/{call_id}", response_model=CallDetail, responses=error_responses(404))
async def get_call(call_id: ResourceId, request: Request, db: Db, who: Auth) -> CallDetail:
    row = await load_call(db, who.org_id, call_id)
    recording_url = None
    if has_recording(row):
        recording_url = str(request.url_for("get_recording", call_id=row.id))
    return CallDetail(
        **call_out(row),
        transcript=row.transcript or [],
        latency=row.turn_metrics or [],
        status_history=status_changes(row.status_history),
        media_stats=row.media_stats or {},
        flow=row.flow,
        summary=row.summary,
        sentiment=row.sentiment,
        extracted=row.extracted,
        recording_url=recording_url,
    )


@router.get(
    "/{call_id}/recording",
    name="get_recording",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "the call's recording (WAV)"},
        **error_responses(404),
    },
)
async def get_recording(call_id: ResourceId, db: Db, who: Auth) -> FileResponse:
    row = await load_call(db, who.org_id, call_id)
    if not has_recording(row):
        raise HTTPException(404, detail=f"call {call_id!r} has no recording")
    return FileResponse(row.recording_path, media_type="audio/wav", filename=f"{row.id}.wav")


@router.post(
    "/{call_id}/hangup",
    status_code=202,
    response_model=HangupResponse,
    responses=error_responses(404, 409),
)
async def hangup(call_id: ResourceId, request: Request, db: Db, who: Auth) -> dict:
    row = await load_call(db, who.org_id, call_id)
    if CallStatus(row.status).final:
        raise HTTPException(409, detail=f"call {call_id!r} already ended ({row.status})")
    services = request.app.state.voxline
    await services.hang_up(call_id)
    record = await services.store.get(call_id)
    return {"call_id": call_id, "status": record.status.value if record else row.status}


async def _connected_here(request: Request, db: AsyncSession, org_id: str, call_id: str) -> tuple:
    """The live call and the carrier actions for a call in progress in this process;
    409 (saying why) for one that is not: ended, not answered yet, or carried elsewhere."""
    row = await load_call(db, org_id, call_id)
    status = CallStatus(row.status)
    if status.final:
        raise HTTPException(409, detail=f"call {call_id!r} already ended ({row.status})")
    if status != CallStatus.IN_PROGRESS:
        raise HTTPException(409, detail=f"call {call_id!r} is not connected yet ({row.status})")
    services = request.app.state.voxline
    live = services.calls.get(call_id)
    actions: CarrierActions | None = services.calls.actions
    if live is None or actions is None or not hasattr(live, "transfer"):
        raise HTTPException(409, detail=f"call {call_id!r} is not carried by this server process")
    return live, actions


@router.post(
    "/{call_id}/transfer",
    status_code=202,
    response_model=TransferResponse,
    responses=error_responses(404, 409, *WITH_BODY, 502),
)
async def transfer(
    call_id: ResourceId, body: TransferRequest, request: Request, db: Db, who: Auth
) -> dict:
    """Hand the caller to a number or SIP URI; warm says a briefing to the caller first.
    Answers once the carrier has taken the call and our leg has ended."""
    live, actions = await _connected_here(request, db, who.org_id, call_id)
    briefing = (body.briefing or DEFAULT_BRIEFING) if body.mode == "warm" else None
    try:
        await live.transfer(
            body.to, lambda: actions.transfer(call_id, body.to), briefing=briefing, mode=body.mode
        )
    except UnsupportedAction as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    except CarrierError as exc:
        raise HTTPException(502, detail=f"carrier refused the transfer: {exc}") from exc
    except RuntimeError as exc:  # the call ended before it could be handed over
        raise HTTPException(409, detail=f"call {call_id!r}: {exc}") from exc
    record = await request.app.state.voxline.store.get(call_id)
    return {
        "call_id": call_id,
        "status": record.status.value if record else "in_progress",
        "end_reason": record.end_reason if record else None,
    }


@router.post(
    "/{call_id}/dtmf",
    status_code=202,
    response_model=DtmfResponse,
    responses=error_responses(404, 409, *WITH_BODY, 502),
)
async def send_dtmf(
    call_id: ResourceId, body: DtmfRequest, request: Request, db: Db, who: Auth
) -> dict:
    """Play digits into the call (navigate an IVR), where the call's carrier can."""
    _live, actions = await _connected_here(request, db, who.org_id, call_id)
    try:
        await actions.send_dtmf(call_id, body.digits)
    except UnsupportedAction as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    except CarrierError as exc:
        raise HTTPException(502, detail=f"carrier refused the digits: {exc}") from exc
    return {"call_id": call_id, "digits": body.digits}
