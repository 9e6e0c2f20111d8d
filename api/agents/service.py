"""Loading and saving agents (every save is a version), for every feature that names one."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.agents.models import Agent, AgentVersion
from api.agents.schemas import AgentOut, AgentSpec
from api.db.models import utcnow


def agent_out(agent: Agent) -> AgentOut:
    return AgentOut(
        id=agent.id,
        version=agent.version,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
        spec=AgentSpec.model_validate(agent.spec),
    )


async def load_agent(db: AsyncSession, org_id: str, agent_id: str) -> Agent:
    """The org's agent or 404: another org's agent is indistinguishable from none."""
    agent = (
        await db.execute(select(Agent).where(Agent.id == agent_id, Agent.org_id == org_id))
    ).scalar_one_or_none()
    if agent is None:
        raise HTTPException(404, detail=f"agent {agent_id!r} not found")
    return agent


async def save_agent(db: AsyncSession, org_id: str, spec: AgentSpec) -> Agent:
    from api.agents.llm_policy import check_agent_llm
    from api.postcall.delivery_config import check_post_call_actions
    from api.tools.policy import check_agent_tools

    await check_agent_llm(spec)  # key variable allow-listed, endpoint egress-checked (422)
    await check_post_call_actions(spec)  # channel configs, templates, SSRF (422)
    await check_agent_tools(spec)  # tool secrets allow-listed, tool URLs egress-checked (422)
    data = spec.model_dump(mode="json")
    agent = Agent(org_id=org_id, name=spec.name, version=1, spec=data)
    db.add(agent)
    await db.flush()
    db.add(AgentVersion(agent_id=agent.id, version=1, spec=data))
    return agent


async def _new_version(db: AsyncSession, agent: Agent, spec: AgentSpec) -> None:
    from api.agents.llm_policy import check_agent_llm
    from api.postcall.delivery_config import check_post_call_actions
    from api.tools.policy import check_agent_tools

    await check_agent_llm(spec)  # key variable allow-listed, endpoint egress-checked (422)
    await check_post_call_actions(spec)  # channel configs, templates, SSRF (422)
    await check_agent_tools(spec)  # tool secrets allow-listed, tool URLs egress-checked (422)
    data = spec.model_dump(mode="json")
    latest = (
        await db.execute(
            select(func.max(AgentVersion.version)).where(AgentVersion.agent_id == agent.id)
        )
    ).scalar_one()
    agent.version = (latest or 0) + 1
    agent.spec = data
    agent.name = spec.name
    agent.updated_at = utcnow()
    db.add(AgentVersion(agent_id=agent.id, version=agent.version, spec=data))
