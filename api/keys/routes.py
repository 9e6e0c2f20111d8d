"""/api/v1/keys (list, create, revoke) and /api/v1/org/signing-secret (read, rotate).

Both need an ``admin`` key (``api.keys.scopes``). A created key is in the response once;
listings show its prefix only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, create_key, get_db, require_key
from api.db.models import Organization
from api.errors import AUTHED, WITH_BODY, error_responses
from api.idempotency.replay import Idempotent
from api.keys import service
from api.keys.guard import guard_of
from api.keys.scopes import Scope
from api.schemas import ResourceId, UtcDateTime

router = APIRouter(tags=["keys"], responses=error_responses(*AUTHED))

Db = Annotated[AsyncSession, Depends(get_db)]
Auth = Annotated[Principal, Depends(require_key)]

MAX_OVERLAP_S = 30 * 86400.0


class KeyIn(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field("", max_length=200)
    scope: Scope = Scope.ADMIN


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scope: Scope
    created_at: UtcDateTime | None
    last_used_at: UtcDateTime | None
    revoked_at: UtcDateTime | None


class KeyCreated(KeyOut):
    key: str = Field(description="the key itself: shown this once, only its hash is stored")


class SigningSecretOut(BaseModel):
    secret: str
    previous_valid_until: UtcDateTime | None = Field(
        description="while set, deliveries also carry a signature with the previous secret"
    )


class RotateIn(BaseModel):
    model_config = {"extra": "forbid"}
    overlap_s: float | None = Field(
        None,
        ge=0,
        le=MAX_OVERLAP_S,
        description="how long the previous secret stays valid (default: the server's "
        "VOXLINE_WEBHOOK_SECRET_OVERLAP_S); 0 ends it at once",
    )


@router.get("/api/v1/keys", response_model=list[KeyOut])
async def list_keys(db: Db, who: Auth) -> list[dict[str, Any]]:
    return [service.key_out(row) for row in await service.list_keys(db, who.org_id)]


@router.post(
    "/api/v1/keys",
    status_code=201,
    response_model=KeyCreated,
    dependencies=[Idempotent],
    responses=error_responses(409, *WITH_BODY),
)
async def create(body: KeyIn, db: Db, who: Auth) -> dict[str, Any]:
    row, key = await create_key(db, who.org_id, body.name, body.scope)
    await db.commit()
    return {**service.key_out(row), "key": key}


@router.delete("/api/v1/keys/{key_id}", status_code=204, responses=error_responses(404))
async def revoke(key_id: ResourceId, request: Request, db: Db, who: Auth) -> Response:
    row = await service.revoke_key(db, who.org_id, key_id)
    if row is None:
        raise HTTPException(404, detail=f"key {key_id!r} not found")
    await db.commit()
    guard_of(request.app).rates.forget(key_id)
    return Response(status_code=204)


@router.get("/api/v1/org/signing-secret", response_model=SigningSecretOut)
async def signing_secret(db: Db, who: Auth) -> dict[str, Any]:
    org = await db.get(Organization, who.org_id)
    assert org is not None
    return service.secret_out(org)


@router.post(
    "/api/v1/org/signing-secret/rotate",
    response_model=SigningSecretOut,
    responses=error_responses(*WITH_BODY),
)
async def rotate(request: Request, db: Db, who: Auth, body: RotateIn | None = None) -> Any:
    overlap = body.overlap_s if body and body.overlap_s is not None else None
    if overlap is None:
        overlap = request.app.state.settings.webhook_secret_overlap_s
    org = await service.rotate_signing_secret(db, who.org_id, overlap)
    out = service.secret_out(org)
    await db.commit()
    return out
