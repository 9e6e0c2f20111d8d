"""One started engine and one real server (uvicorn on loopback) for every gateway test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from api.app import Voxline, create_app
from api.server import BackgroundServer
from api.settings import ServerSettings
from gateway.agents import DEMO_NUMBER, InMemoryAgentDirectory
from gateway.twilio.signature import SIGNATURE_HEADER, twilio_signature
from voice_core.config import AgentConfig, EndCallConfig, EngineSettings, LLMConfig
from voice_core.engine import VoiceEngine

QUICK_AGENT_ID = "quick"
QUICK_WELCOME = "Hello, you have reached the garden centre. How can I help?"
PUBLIC_URL = "https://voice.example.test"
TWILIO_AUTH_TOKEN = "test-twilio-auth-token"
TALKER_AGENT_ID = "talker"
TALKER_WELCOME = (
    "Welcome to the city library information line. Our opening hours are nine in the "
    "morning to eight in the evening on weekdays, and ten to four on Saturdays. "
    "Please listen carefully, as our menu options have recently changed."
)


def _agent(welcome: str) -> AgentConfig:
    # Short replies (max_tokens) keep each test call to a few seconds on 2 cores.
    return AgentConfig(
        name="test",
        system_prompt="You answer phone questions in one short sentence.",
        welcome_message=welcome,
        llm=LLMConfig(max_tokens=24, temperature=0.2),
        end_call=EndCallConfig(end_call_tool=False, silence_timeout_s=60),
    )


@dataclass
class LiveServer:
    server: BackgroundServer
    vox: Voxline

    @property
    def media_url(self) -> str:
        return self.server.media_url

    @property
    def base_url(self) -> str:
        return self.server.base_url

    async def token(self, call_id: str, agent_id: str = QUICK_AGENT_ID) -> str:
        """A stream token for ``call_id``, minted as the TwiML answer mints it."""
        return await self.vox.phone.mint_token(call_id, agent_id)

    async def start_params(self, call_id: str, agent_id: str = QUICK_AGENT_ID) -> dict[str, str]:
        """``start.customParameters`` as a carrier sends them back from our TwiML."""
        token = await self.token(call_id, agent_id)
        return {"agent_id": agent_id, "call_id": call_id, "token": token}


def twilio_headers(path: str, form: dict[str, str]) -> dict[str, str]:
    """``X-Twilio-Signature`` for a webhook to ``path`` (with its query) at the public URL."""
    return {SIGNATURE_HEADER: twilio_signature(TWILIO_AUTH_TOKEN, PUBLIC_URL + path, form.items())}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine() -> VoiceEngine:
    engine = VoiceEngine(EngineSettings())
    await engine.start()
    return engine


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def live(
    engine: VoiceEngine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("voxline-data")
    agents = InMemoryAgentDirectory.with_demo_agent()
    agents.add(QUICK_AGENT_ID, _agent(QUICK_WELCOME), numbers=["+15550001111"])
    agents.add(TALKER_AGENT_ID, _agent(TALKER_WELCOME))
    assert await agents.for_number(DEMO_NUMBER) is not None
    app = create_app(
        ServerSettings(
            data_dir=str(data_dir), public_url=PUBLIC_URL, twilio_auth_token=TWILIO_AUTH_TOKEN
        ),
        engine,
        agents=agents,
    )
    server = BackgroundServer(app)
    await server.start()
    vox: Voxline = app.state.voxline
    # Short enough that the dead-socket tests finish fast, long enough for a loaded loop.
    vox.phone.start_timeout_s = 2.0
    vox.phone.idle_timeout_s = 3.0
    # The public URL is for carriers; the simulated callee dials the local port.
    vox.simulated.media_url = server.media_url
    yield LiveServer(server, vox)
    await server.stop()
