"""/api/v1/bulk-call: campaigns, their contacts, controls, live status and events."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.agents.phone_numbers import check_from_number
from api.agents.service import load_agent
from api.auth import Principal, get_db, require_key
from api.campaigns.contacts import ContactsError, ParsedContacts, parse_csv, validate_rows
from api.campaigns.dispatcher import (
    FINAL_CAMPAIGN,
    add_contacts,
    set_campaign_status,
    start_time,
    summary,
)
from api.campaigns.models import Campaign, CampaignContact
from api.campaigns.schemas import (
    CampaignCreate,
    CampaignCreated,
    CampaignOut,
    ContactOut,
    ContactPage,
    ContactsAdd,
    ContactsAdded,
    LiveStatus,
    RejectedRow,
)
from api.errors import AUTHED, WITH_BODY, error_responses, field_error
from api.idempotency.replay import Idempotent
from api.live import sse
from api.schemas import MAX_ROW_ID, RowId

router = APIRouter(
    prefix="/api/v1/bulk-call", tags=["campaigns"], responses=error_responses(*AUTHED)
)
Db = Annotated[AsyncSession, Depends(get_db)]
Auth = Annotated[Principal, Depends(require_key)]


def bulk_out(bc: Campaign) -> dict[str, Any]:
    return {
        "id": bc.id,
        "name": bc.name,
        "agent_id": bc.agent_id,
        "status": bc.status,
        "concurrency": bc.concurrency,
        "schedule": {"start_at": bc.start_at, "timezone": bc.timezone},
        "calling_window": bc.window,
        "retry": bc.retry,
        "created_at": bc.created_at,
        "completed_at": bc.completed_at,
        "summary": summary(bc),
    }


async def load_bulk(db: AsyncSession, org_id: str, bulk_id: int, lock: bool = False) -> Campaign:
    q = select(Campaign).where(Campaign.id == bulk_id, Campaign.org_id == org_id)
    if lock and db.bind.dialect.name == "postgresql":
        q = q.with_for_update()
    bc = (await db.execute(q)).scalar_one_or_none()
    if bc is None:
        raise HTTPException(404, detail=f"bulk call {bulk_id} not found")
    return bc


def _parse(
    contacts: list[dict[str, Any]] | None, csv_text: str | None, existing: set[str]
) -> ParsedContacts:
    try:
        rows = contacts if contacts is not None else parse_csv(csv_text or "")
        if not rows:
            raise ContactsError("contacts", "contacts is empty")
        return validate_rows(rows, existing)
    except ContactsError as exc:
        raise field_error(exc.field, str(exc)) from exc


def _rejected(parsed: ParsedContacts) -> list[RejectedRow]:
    return [
        RejectedRow(row=r.row, phone_number=r.phone_number, reason=r.reason)
        for r in parsed.rejected
    ]


async def _campaign_body(request: Request) -> CampaignCreate:
    """JSON, or multipart with a CSV file (`file`) and the settings as JSON (`campaign`)."""
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise field_error("file", "multipart upload needs a CSV file in the 'file' field")
            raw = await upload.read()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise field_error("file", "the CSV must be UTF-8") from exc
            settings = json.loads(str(form.get("campaign") or "{}"))
            if not isinstance(settings, dict):
                raise field_error("campaign", "campaign must be a JSON object of settings")
            return CampaignCreate.model_validate({**settings, "contacts_csv": text})
        return CampaignCreate.model_validate(await request.json())
    except json.JSONDecodeError as exc:
        raise HTTPException(422, detail=f"body is not valid JSON: {exc.msg}") from exc
    except ValidationError as exc:
        raise HTTPException(
            422,
            detail=[
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False)
            ],
        ) from exc


@router.post(
    "",
    status_code=201,
    response_model=CampaignCreated,
    dependencies=[Idempotent],
    responses=error_responses(404, 409, *WITH_BODY),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/CampaignCreate"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "campaign": {"type": "string", "description": "settings as JSON"},
                        },
                    }
                },
            }
        }
    },
)
async def create_bulk_call(request: Request, db: Db, who: Auth) -> CampaignCreated:
    body = await _campaign_body(request)
    agent = await load_agent(db, who.org_id, body.agent_id)
    await check_from_number(db, who.org_id, body.from_number)  # only the org's own numbers
    parsed = _parse(body.contacts, body.contacts_csv, set())
    if not parsed.accepted:
        raise HTTPException(
            422,
            detail={
                "msg": "no valid contacts",
                "rejected": [r.model_dump() for r in _rejected(parsed)],
            },
        )
    start_at = start_time(body.schedule.start_at, body.schedule.timezone)
    now = datetime.now(UTC)
    bc = Campaign(
        org_id=who.org_id,
        agent_id=agent.id,
        name=body.name,
        status="scheduled",
        concurrency=body.concurrency,
        timezone=body.schedule.timezone,
        start_at=start_at,
        window=body.calling_window.model_dump(mode="json") if body.calling_window else None,
        retry=body.retry.model_dump(mode="json"),
        from_number=body.from_number,
        created_at=now,
        updated_at=now,
    )
    db.add(bc)
    await db.flush()
    await add_contacts(db, bc, parsed.accepted)
    await db.commit()
    await db.refresh(bc)
    request.app.state.dispatcher.wake()
    return CampaignCreated(
        **bulk_out(bc), accepted=len(parsed.accepted), rejected=_rejected(parsed)
    )


@router.get("", response_model=list[CampaignOut])
async def list_bulk_calls(db: Db, who: Auth) -> list[CampaignOut]:
    rows = (
        await db.execute(
            select(Campaign).where(Campaign.org_id == who.org_id).order_by(Campaign.id.desc())
        )
    ).scalars()
    return [CampaignOut(**bulk_out(bc)) for bc in rows]


@router.get("/{bulk_id}", response_model=CampaignOut, responses=error_responses(404))
async def get_bulk_call(bulk_id: RowId, db: Db, who: Auth) -> CampaignOut:
    return CampaignOut(**bulk_out(await load_bulk(db, who.org_id, bulk_id)))


@router.post(
    "/{bulk_id}/contacts",
    response_model=ContactsAdded,
    dependencies=[Idempotent],
    responses=error_responses(404, 409, *WITH_BODY),
)
async def add_bulk_contacts(
    bulk_id: RowId, body: ContactsAdd, request: Request, db: Db, who: Auth
) -> ContactsAdded:
    bc = await load_bulk(db, who.org_id, bulk_id, lock=True)
    if bc.status in ("cancelled", "failed"):
        raise HTTPException(409, detail=f"bulk call {bulk_id} is {bc.status}")
    existing = set(
        (
            await db.execute(
                select(CampaignContact.phone_number).where(CampaignContact.bulk_call_id == bc.id)
            )
        ).scalars()
    )
    parsed = _parse(body.contacts, body.contacts_csv, existing)
    if parsed.accepted:
        await add_contacts(db, bc, parsed.accepted)
    await db.commit()
    await db.refresh(bc)
    request.app.state.dispatcher.wake()
    return ContactsAdded(
        accepted=len(parsed.accepted), rejected=_rejected(parsed), summary=summary(bc)
    )


_TRANSITIONS = {
    "pause": ({"scheduled", "in_progress"}, "paused"),
    "resume": ({"paused"}, "in_progress"),
    "cancel": ({"scheduled", "in_progress", "paused"}, "cancelled"),
}


@router.post("/{bulk_id}/{action}", response_model=CampaignOut, responses=error_responses(404, 409))
async def control(
    bulk_id: RowId,
    action: Literal["pause", "resume", "cancel"],
    request: Request,
    db: Db,
    who: Auth,
) -> CampaignOut:
    allowed, target = _TRANSITIONS[action]
    bc = await load_bulk(db, who.org_id, bulk_id, lock=True)
    if bc.status not in allowed:
        raise HTTPException(409, detail=f"cannot {action} a bulk call that is {bc.status}")
    await set_campaign_status(db, bc, target)
    await db.commit()
    await db.refresh(bc)
    request.app.state.dispatcher.wake()
    return CampaignOut(**bulk_out(bc))


@router.get("/{bulk_id}/contacts", response_model=ContactPage, responses=error_responses(404))
async def list_contacts(
    bulk_id: RowId,
    db: Db,
    who: Auth,
    state: Annotated[
        str | None, Query(pattern=r"^[a-z_]{1,16}$", description="e.g. queued, completed")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        int | None, Query(ge=0, le=MAX_ROW_ID, description="next_cursor of the previous page")
    ] = None,
) -> ContactPage:
    await load_bulk(db, who.org_id, bulk_id)
    q = select(CampaignContact).where(CampaignContact.bulk_call_id == bulk_id)
    if state:
        q = q.where(CampaignContact.state == state)
    if cursor is not None:
        q = q.where(CampaignContact.id > cursor)
    rows = list((await db.execute(q.order_by(CampaignContact.id).limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return ContactPage(
        data=[
            ContactOut(
                id=c.id,
                phone_number=c.phone_number,
                variables=c.variables or {},
                state=c.state,
                attempts=c.attempts,
                next_attempt_at=c.next_attempt_at,
                call_ids=c.call_ids or [],
                last_outcome=c.last_outcome,
            )
            for c in rows
        ],
        next_cursor=rows[-1].id if more and rows else None,
    )


@router.get("/{bulk_id}/live-status", response_model=LiveStatus, responses=error_responses(404))
async def live_status(bulk_id: RowId, db: Db, who: Auth) -> dict[str, Any]:
    """Built for polling every few seconds: one primary-key read of maintained counters."""
    bc = await load_bulk(db, who.org_id, bulk_id)
    return {
        "status": "success",
        "bulk_call_id": bc.id,
        "campaign_status": bc.status,
        "summary": summary(bc),
    }


@router.get(
    "/{bulk_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        **error_responses(404),
    },
)
async def events(bulk_id: RowId, request: Request, db: Db, who: Auth) -> StreamingResponse:
    """Server-Sent Events: `summary` whenever the counters change, `status` when the
    campaign's status changes; the stream ends after a final status."""
    await load_bulk(db, who.org_id, bulk_id)
    sessions = request.app.state.db_sessions
    dispatcher = request.app.state.dispatcher
    org_id = who.org_id

    async def stream():  # type: ignore[no-untyped-def]
        last_summary: dict[str, int] | None = None
        last_status: str | None = None
        idle = 0.0
        seq = 0
        while True:
            async with sessions() as s:
                bc = await load_bulk(s, org_id, bulk_id)
                current, status = summary(bc), bc.status
            if current != last_summary:
                seq += 1
                yield sse.format_event(
                    {"bulk_call_id": bulk_id, "campaign_status": status, "summary": current},
                    event="summary",
                    id=str(seq),
                )
                last_summary, idle = current, 0.0
            if status != last_status:
                seq += 1
                yield sse.format_event(
                    {"bulk_call_id": bulk_id, "campaign_status": status},
                    event="status",
                    id=str(seq),
                )
                last_status = status
            if status in FINAL_CAMPAIGN:
                return
            if await request.is_disconnected():
                return
            # Woken by this process's dispatcher at once; the timeout catches changes
            # made by other processes.
            changed = dispatcher.changed
            try:
                await asyncio.wait_for(changed.wait(), 0.5)
            except TimeoutError:
                idle += 0.5
            if idle >= 15:
                yield sse.comment()
                idle = 0.0

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
