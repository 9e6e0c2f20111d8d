"""A flow agent inside a real CallSession (fast fakes for the models): what the caller
hears, what a discarded speculation leaves, slow tools, native tool calls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np

from gateway.demo_flow import DENTAL_FLOW
from tests.conftest import feed, silence
from tests.voice_core.fakes import FakeLLM, FakeSTT, tone, words
from tests.voice_core.test_session import FAST, make_agent, start_session
from voice_core.events import AgentReply, CallEnded, ToolInvoked
from voice_core.flows.spec import FlowSpec
from voice_core.llm.base import ToolCall
from voice_core.tools import ToolResult


class ScriptedSTT(FakeSTT):
    """The caller's lines, told apart by the loudness of their fake speech: line i is a
    tone at ``loudness(i)`` (so every pass over one utterance, speculative or final,
    hears the same line)."""

    def __init__(self, *lines: str) -> None:
        super().__init__(self._line)
        self.lines = list(lines)

    def _line(self, audio: np.ndarray) -> str:
        peak = int(np.abs(audio.astype(np.int32)).max())
        i = round((peak - 3000) / 1000)
        return self.lines[i] if 0 <= i < len(self.lines) else ""


def loudness(i: int) -> int:
    return 3000 + 1000 * i


async def say_line(s, i: int, ms: int = 400, trailing_ms: int = 1400) -> None:
    await feed(s, np.concatenate([tone(ms, loudness(i)), silence(trailing_ms)]), FAST)


class SlowTools:
    """A ToolRunner stand-in: one tool that answers after ``delay_s``."""

    def __init__(self, delay_s: float, result: dict[str, Any]) -> None:
        self.delay_s, self.result = delay_s, result
        self.runs: list[dict[str, Any]] = []

    def definitions(self) -> list[dict[str, Any]]:
        return [{"type": "function", "function": {"name": "availability", "parameters": {}}}]

    def has(self, name: str) -> bool:
        return name == "availability"

    async def run(self, name: str, arguments: Any) -> ToolResult:
        self.runs.append(dict(arguments))
        await asyncio.sleep(self.delay_s)
        return ToolResult(name, True, json.dumps(self.result), None, self.delay_s * 1000)


async def replies(col, n: int) -> list[str]:
    for _ in range(200):
        got = [r.text for r in col.of(AgentReply)]
        if len(got) >= n:
            return got
        await asyncio.sleep(0.02)
    return [r.text for r in col.of(AgentReply)]


async def test_the_demo_flow_answers_with_its_own_lines_and_hangs_up() -> None:
    stt = ScriptedSTT(
        "I'd like a cleaning on Friday at 9 am.",
        "My name is Ann Bell.",
        "555 123 4567",
        "Yes.",
        "Yes, book it.",
    )
    llm = FakeLLM()  # the embedded-model path: the flow never asks the model
    s, col = await start_session(agent=make_agent(flow=DENTAL_FLOW), stt=stt, llm=llm)
    got = await replies(col, 1)
    assert got[0].startswith("Thank you for calling Bright Smile Dental")
    for i in range(5):
        # the name and the number are dictated: the turn waits out a longer pause
        await say_line(s, i)
        got = await replies(col, i + 2)
    ended = await col.wait_for(CallEnded)
    assert ended.reason == "agent_ended"
    assert got[1].startswith("May I have your first and last name")
    assert got[3] == "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"
    assert got[4] == "So that's a cleaning on Friday at 9 am, for Ann Bell. Shall I book it?"
    record = s.flow_record()
    assert record is not None and record["completed"]
    assert record["values"]["phone"] == "5551234567"
    assert record["summary"].startswith("Ann Bell booked a cleaning on Friday at 9 am")
    assert llm.calls == []  # the embedded-model path: nothing but the prewarm


async def test_a_discarded_speculation_does_not_move_the_flow() -> None:
    stt = ScriptedSTT("a cleaning", "a cleaning on Tuesday please")
    s, col = await start_session(agent=make_agent(flow=DENTAL_FLOW), stt=stt)
    await replies(col, 1)
    # speech, a pause long enough to speculate (the first transcription: "a cleaning"),
    # more speech, then the end of turn: only the whole utterance counts.
    audio = np.concatenate(
        [tone(400, loudness(0)), silence(200), tone(400, loudness(1)), silence(500)]
    )
    await feed(s, audio, FAST)
    got = await replies(col, 2)
    assert got[1] == "And what time works best for you?"
    assert s.flow_record()["values"] == {"service": "cleaning", "day": "Tuesday"}
    await s.hangup()


async def test_a_slow_flow_tool_gets_a_filler_line_and_its_result_is_used() -> None:
    spec = FlowSpec.model_validate(
        {
            "start": "ask",
            "slots": [{"name": "day", "type": "weekday", "prompt": "Which day?"}],
            "nodes": [
                {
                    "id": "ask",
                    "say": "Which day would you like?",
                    "collect": ["day"],
                    "tool": {
                        "name": "availability",
                        "arguments": {"day": "{day:value}"},
                        "filler_after_ms": 100,
                    },
                    "next": "tell",
                },
                {
                    "id": "tell",
                    "say": "The first free slot is {tools.availability.first}.",
                    "action": "end_call",
                },
            ],
        }
    )
    tools = SlowTools(0.4, {"first": "10 am"})
    stt = ScriptedSTT("Monday")
    s, col = await start_session(agent=make_agent(flow=spec), stt=stt, tools=tools)
    await replies(col, 1)
    await say_line(s, 0)
    await col.wait_for(CallEnded)
    got = [r.text for r in col.of(AgentReply)]
    assert got[1] == "One moment, please. The first free slot is 10 am."
    assert tools.runs == [{"day": "Monday"}]
    assert [e.name for e in col.of(ToolInvoked)] == ["availability"]


async def test_a_capable_model_reads_the_values_with_a_tool_call() -> None:
    """extraction=tools: the model's record_answer call is checked by the same parsers
    (here it normalises 'the day after Monday' to Tuesday, which the rules alone miss)."""
    spec = DENTAL_FLOW.model_copy(update={"extraction": "tools"})
    llm = FakeLLM(
        [ToolCall("record_answer", {"service": "cleaning", "day": "Tuesday"})],
    )
    stt = ScriptedSTT("A cleaning, the day after Monday.")
    s, col = await start_session(agent=make_agent(flow=spec), stt=stt, llm=llm)
    await replies(col, 1)
    await say_line(s, 0)
    got = await replies(col, 2)
    assert got[1] == "And what time works best for you?"
    assert s.flow_record()["values"] == {"service": "cleaning", "day": "Tuesday"}
    tool = llm.calls[-1]
    assert tool[-1] == {"role": "user", "content": "A cleaning, the day after Monday."}
    await s.hangup()


async def test_a_free_form_agent_calls_a_custom_tool_and_answers_with_its_result() -> None:
    llm = FakeLLM(
        [ToolCall("availability", {"day": "Monday"})],
        words("Monday at ten is free."),
    )
    tools = SlowTools(0.9, {"first": "10 am"})
    s, col = await start_session(agent=make_agent(), llm=llm, tools=tools)
    await say_line(s, 0)
    reply = await col.wait_for(AgentReply)
    assert reply.text == "One moment, please. Monday at ten is free."
    second = llm.calls[1]
    assert second[-2]["tool_calls"][0]["function"]["name"] == "availability"
    assert second[-1]["role"] == "tool" and '"first": "10 am"' in second[-1]["content"]
    await s.hangup()


async def test_a_pause_between_digit_groups_does_not_end_the_turn() -> None:
    """Asked for a phone number, the caller pauses 700 ms between groups (longer than
    the usual end of turn): the flow hears one number, not two fragments."""
    stt = ScriptedSTT("a cleaning on Friday at 9 am, my name is Ann Bell", "555 123 4567")
    s, col = await start_session(agent=make_agent(flow=DENTAL_FLOW), stt=stt)
    await replies(col, 1)
    await say_line(s, 0)
    got = await replies(col, 2)
    assert got[1] == "And what's the best phone number to reach you?"
    digits = tone(300, loudness(1))
    dictated = np.concatenate([digits, silence(700), digits, silence(700), digits])
    await feed(s, np.concatenate([dictated, silence(1400)]), FAST)
    got = await replies(col, 3)
    assert got[2] == "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"
    assert len(got) == 3
    await s.hangup()


class PromptedSTT(ScriptedSTT):
    """Notes the vocabulary prompt each caller utterance's stream was opened with."""

    def __init__(self, *lines: str) -> None:
        super().__init__(*lines)
        self.prompts: list[str] = []

    def stream(self, *, prompt: str | None = None, hints: str = "") -> None:
        self.prompts.append(hints)
        return None  # the session then transcribes whole utterances


async def test_the_ear_is_primed_for_what_the_flow_waits_for() -> None:
    from voice_core.flows.hints import SPELLING_HINT, TIMES_HINT, WEEKDAYS_HINT

    stt = PromptedSTT("I'd like a cleaning on Friday at 9 am.", "Ann Bell, B, E, L, L.")
    s, col = await start_session(agent=make_agent(flow=DENTAL_FLOW), stt=stt)
    await replies(col, 1)
    await say_line(s, 0)
    got = await replies(col, 2)
    assert got[1].startswith("May I have your first and last name")
    await say_line(s, 1)
    await replies(col, 3)
    # the greeting collects every value: the services, the days and times, no letters
    first = stt.prompts[0]
    assert "cleaning, check-up, filling" in first and WEEKDAYS_HINT in first
    assert TIMES_HINT in first and SPELLING_HINT not in first
    # asked for the name: the alphabet, as the caller may spell it
    assert stt.prompts[1] == SPELLING_HINT
    assert s.flow_record()["values"]["name"] == "Ann Bell"
    await s.hangup()
