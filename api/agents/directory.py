"""The gateway's AgentDirectory over the database: agents and the numbers that reach them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.agents.llm_policy import agent_config
from api.agents.models import Agent, PhoneNumber
from api.agents.schemas import AgentSpec
from api.postcall.policy import current_settings
from gateway.agents import normalize_number
from voice_core.config import AgentConfig


class SqlAgentDirectory:
    """Agents and numbers from the database (any organization: the carrier tells us the
    number that was called, and numbers are unique across organizations)."""

    def __init__(self, sessions: async_sessionmaker, default_agent_id: str | None = None) -> None:
        self._sessions = sessions
        self._default = default_agent_id

    async def get_spec(self, agent_id: str) -> tuple[AgentSpec, int] | None:
        async with self._sessions() as db:
            row = await db.get(Agent, agent_id)
            if row is None:
                return None
            return AgentSpec.model_validate(row.spec), row.version

    async def get(self, agent_id: str) -> AgentConfig | None:
        """None also when the agent's LLM endpoint no longer passes the egress policy
        (the gateway ends the call as for an unknown agent)."""
        found = await self.get_spec(agent_id)
        if not found:
            return None
        return await agent_config(found[0], current_settings.get())

    async def for_number(self, number: str) -> str | None:
        async with self._sessions() as db:
            return (
                await db.execute(
                    select(PhoneNumber.agent_id).where(
                        PhoneNumber.number == normalize_number(number)
                    )
                )
            ).scalar_one_or_none()

    @property
    def default_agent_id(self) -> str | None:
        return self._default

    @default_agent_id.setter
    def default_agent_id(self, value: str | None) -> None:
        self._default = value
