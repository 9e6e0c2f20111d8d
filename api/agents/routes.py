"""/api/v1/agents: create, list, get, update, delete; every save is a version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.agents.models import Agent, AgentVersion
from api.agents.schemas import AgentOut, AgentSpec, AgentVersionOut
from api.agents.service import _new_version, agent_out, load_agent, save_agent
from api.auth import Principal, get_db, require_key
from api.errors import AUTHED, WITH_BODY, error_responses
from api.idempotency.replay import Idempotent
from api.schemas import ResourceId, RowId

router = APIRouter(prefix="/api/v1/agents", tags=["agents"], responses=error_responses(*AUTHED))

Db = Annotated[AsyncSession, Depends(get_db)]
Auth = Annotated[Principal, Depends(require_key)]


@router.post(
    "",
    status_code=201,
    response_model=AgentOut,
    dependencies=[Idempotent],
    responses=error_responses(409, *WITH_BODY),
)
async def create_agent(spec: AgentSpec, db: Db, who: Auth) -> AgentOut:
    agent = await save_agent(db, who.org_id, spec)
    await db.commit()
    return agent_out(agent)


@router.get("", response_model=list[AgentOut])
async def list_agents(db: Db, who: Auth) -> list[AgentOut]:
    rows = (
        await db.execute(
            select(Agent).where(Agent.org_id == who.org_id).order_by(Agent.created_at, Agent.id)
        )
    ).scalars()
    return [agent_out(a) for a in rows]


@router.get("/{agent_id}", response_model=AgentOut, responses=error_responses(404))
async def get_agent(agent_id: ResourceId, db: Db, who: Auth) -> AgentOut:
    return agent_out(await load_agent(db, who.org_id, agent_id))


@router.put("/{agent_id}", response_model=AgentOut, responses=error_responses(404, *WITH_BODY))
async def update_agent(agent_id: ResourceId, spec: AgentSpec, db: Db, who: Auth) -> AgentOut:
    agent = await load_agent(db, who.org_id, agent_id)
    await _new_version(db, agent, spec)
    await db.commit()
    return agent_out(agent)


@router.delete("/{agent_id}", status_code=204, responses=error_responses(404))
async def delete_agent(agent_id: ResourceId, db: Db, who: Auth) -> Response:
    agent = await load_agent(db, who.org_id, agent_id)
    await db.execute(delete(AgentVersion).where(AgentVersion.agent_id == agent.id))
    await db.delete(agent)
    await db.commit()
    return Response(status_code=204)


@router.get(
    "/{agent_id}/versions", response_model=list[AgentVersionOut], responses=error_responses(404)
)
async def list_versions(agent_id: ResourceId, db: Db, who: Auth) -> list[AgentVersionOut]:
    agent = await load_agent(db, who.org_id, agent_id)
    rows = (
        await db.execute(
            select(AgentVersion)
            .where(AgentVersion.agent_id == agent.id)
            .order_by(AgentVersion.version.desc())
        )
    ).scalars()
    return [
        AgentVersionOut(
            version=v.version, created_at=v.created_at, spec=AgentSpec.model_validate(v.spec)
        )
        for v in rows
    ]


@router.post(
    "/{agent_id}/versions/{version}/restore",
    response_model=AgentOut,
    responses=error_responses(404),
)
async def restore_version(agent_id: ResourceId, version: RowId, db: Db, who: Auth) -> AgentOut:
    """Restoring saves the old spec as a new version: history is never rewritten."""
    agent = await load_agent(db, who.org_id, agent_id)
    old = (
        await db.execute(
            select(AgentVersion).where(
                AgentVersion.agent_id == agent.id, AgentVersion.version == version
            )
        )
    ).scalar_one_or_none()
    if old is None:
        raise HTTPException(404, detail=f"agent {agent_id!r} has no version {version}")
    await _new_version(db, agent, AgentSpec.model_validate(old.spec))
    await db.commit()
    return agent_out(agent)
