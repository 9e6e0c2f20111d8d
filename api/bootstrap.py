"""First start: a default organization, the demo agent, its number and an API key."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.agents.models import Agent, PhoneNumber
from api.agents.schemas import AgentSpec, PromptSections
from api.agents.service import save_agent
from api.auth import create_key, create_organization
from api.db.models import Organization
from gateway.agents import DEMO_NUMBER
from gateway.demo_flow import DENTAL_FLOW

log = logging.getLogger(__name__)

DEFAULT_ORG = "Default organization"

DEMO_SPEC = AgentSpec(
    name="Bright Smile Dental receptionist",
    prompt=PromptSections(
        identity="You are Sam, the receptionist at Bright Smile Dental, a family dental clinic.",
        task=(
            "Help callers book, move or cancel appointments and answer questions about "
            "opening hours, cleanings, check-ups and dental emergencies. Ask one question "
            "at a time. When the caller says goodbye, say goodbye and end the call."
        ),
        style="Speak naturally, in one or two short sentences, as on the phone.",
        knowledge=(
            "Opening hours: Monday to Friday 8 am to 6 pm, Saturday 9 am to 1 pm. "
            "A cleaning takes 45 minutes. The clinic is at 12 Main Street."
        ),
        guardrails=(
            "Never give medical diagnoses. For severe pain or swelling, offer the first "
            "emergency slot."
        ),
    ),
    welcome_message="Thank you for calling Bright Smile Dental. How can I help you today?",
    # The booking is a flow (gateway/demo_flow.py): typed, read-back values; the prompt
    # above is what the model is told where the flow lets it answer freely.
    flow=DENTAL_FLOW,
    extraction=[
        {"key": "service", "description": "the dental service booked"},
        {"key": "day", "description": "the weekday of the appointment"},
        {"key": "time", "description": "the appointment time, HH:MM"},
        {"key": "name", "description": "the caller's full name"},
        {"key": "phone", "description": "the caller's phone number, digits"},
    ],
)


@dataclass
class Bootstrap:
    org_id: str
    agent_id: str
    api_key: str | None  # only when created now (or read back from the demo key file)


async def ensure_defaults(sessions: async_sessionmaker, data_dir: str) -> Bootstrap:
    """Idempotent: creates what is missing. The demo key is also written to
    ``<data_dir>/demo_api_key`` (mode 600) so ``make demo`` can show it again."""
    key_file = Path(data_dir) / "demo_api_key"
    async with sessions() as db:
        org = (
            await db.execute(select(Organization).order_by(Organization.created_at).limit(1))
        ).scalar_one_or_none()
        api_key = None
        if org is None:
            org = await create_organization(db, DEFAULT_ORG)
            _, api_key = await create_key(db, org.id, "demo")
            agent = await save_agent(db, org.id, DEMO_SPEC)
            db.add(PhoneNumber(org_id=org.id, number=DEMO_NUMBER, agent_id=agent.id))
            await db.commit()
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(api_key + "\n")
            log.info("created organization %s, demo agent %s and an API key", org.id, agent.id)
        agent_id = (
            await db.execute(
                select(Agent.id).where(Agent.org_id == org.id).order_by(Agent.created_at).limit(1)
            )
        ).scalar_one_or_none()
        if api_key is None and key_file.exists():
            api_key = key_file.read_text().strip() or None
        return Bootstrap(org_id=org.id, agent_id=agent_id or "", api_key=api_key)
