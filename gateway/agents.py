"""Which agent answers: agents by id, and the phone numbers that reach each.

``AgentDirectory`` is the gateway's view; the in-memory one is seeded with a
demo agent until the control plane stores agents in its database.
"""

from __future__ import annotations

import re
from typing import Protocol

from voice_core.config import AgentConfig, EndCallConfig

DEMO_AGENT_ID = "bright-smile"
DEMO_NUMBER = "+15550100100"

DEMO_AGENT = AgentConfig(
    name="Bright Smile Dental receptionist",
    system_prompt=(
        "You are Sam, the receptionist at Bright Smile Dental, a family dental clinic. "
        "You help callers book, move or cancel appointments and answer questions about "
        "opening hours (Monday to Friday, 8 am to 6 pm; Saturday 9 am to 1 pm), cleanings, "
        "check-ups and dental emergencies. Speak naturally, in one or two short sentences, "
        "as on the phone. Ask one question at a time. Never give medical diagnoses; for "
        "severe pain or swelling, offer the first emergency slot. When the caller says "
        "goodbye, say goodbye and end the call."
    ),
    welcome_message="Thank you for calling Bright Smile Dental. How can I help you today?",
    end_call=EndCallConfig(silence_timeout_s=15.0),
)


def normalize_number(number: str) -> str:
    """E.164-ish key: keep a leading '+' and the digits (carriers format numbers freely)."""
    number = number.strip()
    digits = re.sub(r"\D", "", number)
    return ("+" if number.startswith("+") else "") + digits


class AgentDirectory(Protocol):
    async def get(self, agent_id: str) -> AgentConfig | None: ...

    async def for_number(self, number: str) -> str | None:
        """The agent id that answers calls to ``number`` (None if not mapped)."""
        ...

    @property
    def default_agent_id(self) -> str | None: ...


class InMemoryAgentDirectory:
    def __init__(self, *, default_agent_id: str | None = None) -> None:
        self._agents: dict[str, AgentConfig] = {}
        self._numbers: dict[str, str] = {}
        self._default = default_agent_id

    @classmethod
    def with_demo_agent(cls) -> InMemoryAgentDirectory:
        directory = cls(default_agent_id=DEMO_AGENT_ID)
        directory.add(DEMO_AGENT_ID, DEMO_AGENT, numbers=[DEMO_NUMBER])
        return directory

    def add(self, agent_id: str, agent: AgentConfig, numbers: list[str] | None = None) -> None:
        self._agents[agent_id] = agent
        for number in numbers or []:
            self._numbers[normalize_number(number)] = agent_id

    async def get(self, agent_id: str) -> AgentConfig | None:
        return self._agents.get(agent_id)

    async def for_number(self, number: str) -> str | None:
        return self._numbers.get(normalize_number(number))

    @property
    def default_agent_id(self) -> str | None:
        return self._default
