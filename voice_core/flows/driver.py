"""Runs a flow inside a call: the machine's outputs become spoken text, model answers,
tool calls and the turn's hang-up or transfer.

Per caller turn the driver forks the machine, lets it hear the words (with a capable
model, first reading the values with one native tool call), and turns its outputs into
text pieces the reply pipeline speaks. The fork becomes the flow's state only once the
turn is released to the caller (``settle``): a speculative reply that is discarded
leaves the flow untouched, and a tool with side effects (a booking) never runs for a
reply nobody will hear.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from voice_core.flows.hints import ear_hints
from voice_core.flows.machine import (
    AskModel,
    CallTool,
    EndCall,
    FlowMachine,
    Output,
    Say,
    Transfer,
    Waiting,
)
from voice_core.flows.spec import FlowSpec
from voice_core.llm.base import LanguageModel, TextDelta, ToolCall

log = logging.getLogger("voice_core.session")

RECORD_TOOL = "record_answer"


@dataclass
class FlowReply:
    """What a turn decided besides its words."""

    end_call: bool = False
    transfer_to: str | None = None
    tools_called: int = 0


class FlowDriver:
    def __init__(
        self,
        spec: FlowSpec,
        *,
        use_model_tools: bool,
        today: int | None = None,
        call_id: str = "",
    ) -> None:
        self.spec = spec
        self.machine = FlowMachine(spec, today=today)
        self.use_model_tools = use_model_tools
        self._call_id = call_id
        self._pending: list[tuple[Any, FlowMachine]] = []  # (turn, its fork), oldest first

    # ------------------------------------------------------------ state

    def greeting(self) -> str | None:
        """The start node's lines: the call's welcome. Called once, at call start."""
        lines = [o.text for o in self.machine.start() if isinstance(o, Say)]
        return " ".join(lines) or None

    def settle(self) -> None:
        """Adopt the newest fork whose turn reached the caller; forget the rest."""
        released = [i for i, (turn, _) in enumerate(self._pending) if turn.released]
        if released:
            newest = released[-1]
            self.machine.adopt(self._pending[newest][1])
            del self._pending[: newest + 1]
        self._pending = [(t, f) for t, f in self._pending if not _finished_unheard(t)]

    def expects_dictation(self) -> bool:
        self.settle()
        return self.machine.expects_dictation()

    def ear_hints(self) -> str:
        """Words for the ear's final on the caller's next turn (flows/hints.py)."""
        self.settle()
        return ear_hints(*self.machine.listening_for())

    def values(self) -> dict[str, str]:
        self.settle()
        return self.machine.values()

    def record(self) -> dict[str, Any]:
        """The flow's part of the call record: values, where it ended, the path."""
        self.settle()
        st = self.machine.state
        template = self.spec.summary if st.completed else self.spec.summary_incomplete
        record: dict[str, Any] = {
            "values": self.machine.values(),
            "node": st.node,
            "completed": st.completed,
            "path": list(st.history),
        }
        if template:
            record["summary"] = self.machine.render(template)
        return record

    # ------------------------------------------------------------ a turn

    async def reply(
        self,
        turn: Any,
        text: str,
        *,
        alternatives: list[str] | None = None,
        llm: LanguageModel,
        run_tool: Callable[[str, dict[str, Any]], Awaitable[tuple[bool, Any]]] | None,
        released: Callable[[], Awaitable[None]],
        decided: FlowReply,
        temperature: float,
        max_tokens: int,
    ) -> AsyncIterator[str]:
        """The turn's text, piece by piece (each piece is whole clauses or model deltas)."""
        self.settle()
        fork = self.machine.fork()
        self._pending.append((turn, fork))
        extracted = await self._extract(fork, text, llm) if self.use_model_tools else {}
        outputs: list[Output] = fork.hear(text, extracted, alternatives=alternatives)
        while outputs:
            output = outputs.pop(0)
            if isinstance(output, Say):
                yield output.text + " "
            elif isinstance(output, AskModel):
                async for piece in self._ask_model(output, llm, temperature, max_tokens):
                    yield piece
                yield " "
            elif isinstance(output, CallTool):
                if run_tool is None:
                    log.warning("call %s: flow tool %s: no tools configured", self._call_id,
                                output.step.name)  # fmt: skip
                    outputs = fork.tool_done(output.step.name, False, "no tools configured")
                    continue
                # Only for a turn the caller will hear: a speculative reply must not book.
                await released()
                decided.tools_called += 1
                task = asyncio.ensure_future(run_tool(output.step.name, output.arguments))
                try:
                    ok, result = await asyncio.wait_for(
                        asyncio.shield(task), output.step.filler_after_ms / 1000
                    )
                except TimeoutError:
                    yield output.step.filler + " "
                    ok, result = await task
                outputs = fork.tool_done(output.step.name, ok, result) + outputs
            elif isinstance(output, EndCall):
                decided.end_call = True
            elif isinstance(output, Transfer):
                decided.transfer_to = output.target

    async def _ask_model(
        self, ask: AskModel, llm: LanguageModel, temperature: float, max_tokens: int
    ) -> AsyncIterator[str]:
        messages = [
            {"role": "system", "content": ask.task},
            {"role": "user", "content": ask.user_text},
        ]
        async for event in llm.stream(
            messages, None, temperature=temperature, max_tokens=min(max_tokens, 60)
        ):
            if isinstance(event, TextDelta):
                yield event.text

    async def _extract(self, fork: FlowMachine, text: str, llm: LanguageModel) -> dict[str, Any]:
        """A capable model reads the values with one call of ``record_answer``; whatever it
        returns is still checked by the typed parsers (``FlowMachine.hear``)."""
        tool = record_tool(fork)
        asked = fork.state.asked
        waiting = fork.state.waiting
        messages = [
            {
                "role": "system",
                "content": (
                    "You read a phone caller's answer for a booking form. Always call "
                    f"{RECORD_TOOL} with the values the caller gave in this answer (leave "
                    "out what they did not say)."
                    + (f" The agent just asked for: {asked}." if asked else "")
                    + (
                        " The agent just read the values back and asked if they are right."
                        if waiting in (Waiting.NODE_CONFIRM, Waiting.SLOT_CONFIRM)
                        else ""
                    )
                    + f" Values so far: {json.dumps(fork.values())}."
                ),
            },
            {"role": "user", "content": text},
        ]
        try:
            async for event in llm.stream(messages, [tool], temperature=0.0, max_tokens=200):
                if isinstance(event, ToolCall) and event.name == RECORD_TOOL:
                    return dict(event.arguments)
        except Exception as exc:  # the typed parsers still hear the turn
            log.warning("call %s: flow extraction by the model failed: %s", self._call_id, exc)
        return {}


def record_tool(machine: FlowMachine) -> dict[str, Any]:
    """The ``record_answer`` function for the node being filled: one property per slot
    (enums listed), whether the caller confirmed, and which global topic they raised."""
    props: dict[str, Any] = {}
    for slot in machine.asking_for():
        prop: dict[str, Any] = {"type": "string", "description": slot.prompt}
        if slot.type == "enum":
            prop["enum"] = list(slot.values)
        elif slot.type == "weekday":
            prop["description"] = "the weekday, e.g. Tuesday"
        elif slot.type == "time":
            prop["description"] = "the time, e.g. 10:30 am"
        elif slot.type == "phone":
            prop["description"] = "the phone number's digits"
        props[slot.name] = prop
    props["confirmed"] = {
        "type": "boolean",
        "description": "true if the caller agreed the read-back is right, false if not",
    }
    if machine.spec.global_nodes:
        props["intent"] = {
            "type": "string",
            "enum": [g.id for g in machine.spec.global_nodes],
            "description": "only if the caller raised one of these topics",
        }
    return {
        "type": "function",
        "function": {
            "name": RECORD_TOOL,
            "description": "Record what the caller said in this answer.",
            "parameters": {"type": "object", "properties": props, "required": []},
        },
    }


def _finished_unheard(turn: Any) -> bool:
    phase = getattr(turn, "phase", None)
    return getattr(phase, "value", "") == "discarded"
