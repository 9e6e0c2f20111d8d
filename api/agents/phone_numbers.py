"""/api/v1/phone-numbers: which agent answers calls to a number."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.agents.models import PhoneNumber
from api.agents.schemas import PhoneNumberIn, PhoneNumberOut
from api.agents.service import load_agent
from api.auth import Principal, get_db, require_key
from api.errors import AUTHED, WITH_BODY, error_responses, field_error
from api.idempotency.replay import Idempotent
from api.schemas import ResourceId
from gateway.agents import normalize_number

router = APIRouter(
    prefix="/api/v1/phone-numbers", tags=["phone numbers"], responses=error_responses(*AUTHED)
)
Db = Annotated[AsyncSession, Depends(get_db)]
Auth = Annotated[Principal, Depends(require_key)]


def _out(row: PhoneNumber) -> PhoneNumberOut:
    return PhoneNumberOut(
        id=row.id, number=row.number, agent_id=row.agent_id, created_at=row.created_at
    )


async def owner_of(db: AsyncSession, number: str) -> str | None:
    """The organization a number belongs to (one at most: numbers are unique)."""
    return (
        await db.execute(
            select(PhoneNumber.org_id).where(PhoneNumber.number == normalize_number(number))
        )
    ).scalar_one_or_none()


async def check_from_number(db: AsyncSession, org_id: str, number: str | None) -> None:
    """A caller id given by a tenant must be one of its own numbers (422 naming the
    field); None means the operator's default caller id."""
    if number is not None and await owner_of(db, number) != org_id:
        raise field_error(
            "from_number",
            f"{number} is not one of this organization's numbers (register it first: "
            "POST /api/v1/phone-numbers)",
        )


@router.post(
    "",
    status_code=201,
    response_model=PhoneNumberOut,
    dependencies=[Idempotent],
    responses=error_responses(404, 409, *WITH_BODY),
)
async def add_number(body: PhoneNumberIn, db: Db, who: Auth) -> PhoneNumberOut:
    if body.agent_id:
        await load_agent(db, who.org_id, body.agent_id)
    # One owner per number: another organization's (or a second copy of one's own)
    # is refused. The unique index still settles a race between two registrations.
    if await owner_of(db, body.number) is not None:
        raise HTTPException(409, detail=f"number {body.number} is already registered")
    row = PhoneNumber(org_id=who.org_id, number=body.number, agent_id=body.agent_id)
    db.add(row)
    try:
        await db.commit()
    except IntegrityError as exc:
        raise HTTPException(409, detail=f"number {body.number} is already registered") from exc
    return _out(row)


@router.get("", response_model=list[PhoneNumberOut])
async def list_numbers(db: Db, who: Auth) -> list[PhoneNumberOut]:
    rows = (
        await db.execute(
            select(PhoneNumber).where(PhoneNumber.org_id == who.org_id).order_by(PhoneNumber.number)
        )
    ).scalars()
    return [_out(r) for r in rows]


async def _load(db: AsyncSession, org_id: str, number_id: str) -> PhoneNumber:
    row = (
        await db.execute(
            select(PhoneNumber).where(PhoneNumber.id == number_id, PhoneNumber.org_id == org_id)
        )
    ).scalar_one_or_none()
    if row is None:
        raise HTTPException(404, detail=f"phone number {number_id!r} not found")
    return row


@router.put(
    "/{number_id}", response_model=PhoneNumberOut, responses=error_responses(404, *WITH_BODY)
)
async def assign(number_id: ResourceId, body: PhoneNumberIn, db: Db, who: Auth) -> PhoneNumberOut:
    row = await _load(db, who.org_id, number_id)
    if body.agent_id:
        await load_agent(db, who.org_id, body.agent_id)
    if body.number != row.number:
        raise field_error("number", "a number cannot be renamed")
    row.agent_id = body.agent_id
    await db.commit()
    return _out(row)


@router.delete("/{number_id}", status_code=204, responses=error_responses(404))
async def remove(number_id: ResourceId, db: Db, who: Auth) -> Response:
    row = await _load(db, who.org_id, number_id)
    await db.delete(row)
    await db.commit()
    return Response(status_code=204)
