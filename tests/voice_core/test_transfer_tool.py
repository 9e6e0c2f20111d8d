"""The transfer_call tool: offered only when enabled, and only to the agent's allowed targets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from tests.voice_core.fakes import FakeLLM, words
from tests.voice_core.test_session import make_agent, say, start_session
from voice_core.config import TransferConfig, TransferTarget
from voice_core.events import (
    AgentReply,
    CallEnded,
    DtmfRequested,
    ToolInvoked,
    TransferRequested,
)
from voice_core.llm.base import ToolCall

TARGETS = [
    TransferTarget(name="billing", to="+15550199000", description="bills and payments"),
    TransferTarget(name="frontdesk", to="sip:desk@pbx.example.test"),
]


class ToolRecordingLLM(FakeLLM):
    """FakeLLM that also keeps the tools each reply was offered."""

    def __init__(self, *scripts: Any) -> None:
        super().__init__(*scripts)
        self.tools: list[list[dict[str, Any]] | None] = []

    def stream(self, messages, tools=None, **kw):  # type: ignore[no-untyped-def]
        if messages[-1]["role"] != "system":
            self.tools.append(tools)
        return super().stream(messages, tools, **kw)


def transfer_reply(target: str) -> list:
    return [*words("Let me put you through."), ToolCall("transfer_call", {"target": target})]


async def _one_turn(transfer: TransferConfig, target: str) -> tuple[ToolRecordingLLM, Any]:
    llm = ToolRecordingLLM(transfer_reply(target))
    s, col = await start_session(agent=make_agent(transfer=transfer), llm=llm)
    await say(s)
    await col.wait_for(AgentReply)
    await col.wait_for(ToolInvoked)
    return llm, (s, col)


async def test_an_allowed_target_asks_the_transport_to_transfer() -> None:
    cfg = TransferConfig(enabled=True, targets=TARGETS, mode="warm", briefing="One moment.")
    llm, (s, col) = await _one_turn(cfg, "billing")
    requested = await col.wait_for(TransferRequested)
    assert requested == TransferRequested("billing", "+15550199000", "warm", "One moment.")
    # The model sees target names to choose from, never the numbers behind them.
    tool = next(t for t in llm.tools[0] or [] if t["function"]["name"] == "transfer_call")
    assert tool["function"]["parameters"]["properties"]["target"]["enum"] == [
        "billing",
        "frontdesk",
    ]
    assert "+1555" not in str(tool) and "sip:" not in str(tool)
    assert not col.of(CallEnded)  # the transport ends the call once the carrier moved it
    await s.hangup()


@pytest.mark.parametrize(
    ("cfg", "target"),
    [
        (TransferConfig(enabled=True, targets=TARGETS), "+15551234567"),  # a number it made up
        (TransferConfig(enabled=True, targets=TARGETS), "sales"),  # not on the list
        (TransferConfig(enabled=False, targets=TARGETS), "billing"),  # off
    ],
)
async def test_a_target_off_the_list_transfers_nobody(cfg: TransferConfig, target: str) -> None:
    llm, (s, col) = await _one_turn(cfg, target)
    assert not col.of(TransferRequested)
    assert not s.ended.is_set()  # the conversation goes on
    names = [t["function"]["name"] for t in llm.tools[0] or []]
    assert ("transfer_call" in names) is cfg.enabled
    await s.hangup()


@pytest.mark.parametrize("to", ["5551234", "+1555 0199", "sip:a b@x", "tel:+15551234567"])
def test_a_target_must_be_dialable(to: str) -> None:
    with pytest.raises(ValidationError, match="to"):
        TransferTarget(name="x", to=to)


@pytest.mark.parametrize(
    ("enabled", "digits", "pressed"),
    [(True, "1w2#", ["1w2#"]), (True, "1; rm -rf", []), (False, "1", [])],
)
async def test_send_dtmf_presses_only_valid_keys_when_enabled(
    enabled: bool, digits: str, pressed: list[str]
) -> None:
    llm = ToolRecordingLLM([*words("Pressing one."), ToolCall("send_dtmf", {"digits": digits})])
    s, col = await start_session(agent=make_agent(dtmf_tool=enabled), llm=llm)
    await say(s)
    await col.wait_for(AgentReply)
    await col.wait_for(ToolInvoked)
    await asyncio.sleep(0.05)
    assert [e.digits for e in col.of(DtmfRequested)] == pressed
    names = [t["function"]["name"] for t in llm.tools[0] or []]
    assert ("send_dtmf" in names) is enabled
    await s.hangup()
