"""Booking calls that must get the job done: the demo flow over the real phone protocol.

Each scenario is a scripted caller (Piper-voiced lines, heard through the real ear:
mu-law 8 kHz -> Whisper) calling the demo agent (the Bright Smile Dental flow,
gateway/demo_flow.py) on the whole app, as ``voxline serve`` runs it (post-call
analysis on). Varied wording, several values in one answer, corrections at the
read-back ("no, Wednesday"), a spelled surname, dictated numbers, off-topic questions,
a value out of bounds, a caller who hangs up early. Told "Sorry, I didn't catch
that", the caller says the line once more, in a second recording (``RepeatingCaller``).

Success for a call = the call record's flow values are exactly the expected ones, the
caller heard the read-back (the agent's "Shall I book it?" line played out, not cut),
and the call ended the expected way (the agent hung up after the goodbye; or, for an
early hang-up, the caller did and nothing was invented).

    python -m benchmarks.conversations [--only N] [--model-tools]

``--model-tools``: the same flow with extraction=tools against a local
OpenAI-compatible stub that answers every turn with a native ``record_answer`` tool
call (the path a capable remote model takes); the stub reads the scripted values.
Not a pass/fail test: it reports the success rate, the failures and the per-turn
latency (response: end of turn decision -> first agent audio at the caller).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

import numpy as np

# At module level: FastAPI reads the handler's annotations from the module's globals
# (this file postpones annotations), so a local import makes ``request`` a query
# parameter and every request a 422.
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from api.server import BackgroundServer
from benchmarks.latency import (
    DEMO_AGENT_ID,
    Harness,
    callee_t0,
    caller_lines,
    loadavg,
    running_server,
    turns_of_call,
)
from benchmarks.stats import machine, publish, summary
from gateway.agents import DEMO_AGENT
from gateway.calls import new_call_id
from gateway.demo_flow import DENTAL_FLOW
from gateway.simulated.callee import (
    CalleeLine,
    CalleeReport,
    SaidLine,
    SimulatedCallee,
    to_mulaw_frames,
)
from voice_core.config import AgentConfig, EndCallConfig, LLMConfig
from voice_core.flows.machine import FlowMachine
from voice_core.flows.parse import digits, parse_slot

CLEANING = {
    "service": "cleaning",
    "day": "Thursday",
    "time": "10:00",
    "name": "David Brown",
    "phone": "5551234567",
}


@dataclass
class Scenario:
    name: str
    lines: list[str]
    expected: dict[str, str]
    outcome: str = "booked"  # booked | caller_left | agent_ended_early
    extracted: list[dict[str, Any]] = field(default_factory=list)  # --model-tools: per line


SCENARIOS = [
    Scenario(
        "straight booking",
        [
            "Hi, I'd like to book a cleaning.",
            "Thursday, please.",
            "At 10 am.",
            "My name is Anna Lee, that's L, E, E.",
            "5 5 5, 1 2 3, 4 5 6 7.",
            "Yes.",
            "Yes, please book it.",
        ],
        {**CLEANING, "name": "Anna Lee"},
    ),
    Scenario(
        "everything in one breath",
        [
            "Hello, can I get a check-up on Monday at 2 pm? My name is John Smith.",
            "It's 5 5 5, 8 6 7, 5 3 0 9.",
            "That's right.",
            "Yes.",
        ],
        {
            "service": "check-up",
            "day": "Monday",
            "time": "14:00",
            "name": "John Smith",
            "phone": "5558675309",
        },
    ),
    Scenario(
        "correction at the read-back",
        [
            "I need a cleaning on Tuesday at 9 am.",
            "This is Maria Lopez.",
            "5 5 5, 2 0 1, 3 9 4 8.",
            "Yes.",
            "No, Wednesday.",
            "Yes, that's correct.",
        ],
        {
            "service": "cleaning",
            "day": "Wednesday",
            "time": "09:00",
            "name": "Maria Lopez",
            "phone": "5552013948",
        },
    ),
    Scenario(
        "off-topic question mid-booking",
        [
            "I'd like to book a filling.",
            "What are your opening hours?",
            "Friday then.",
            "Around 3.",
            "My name is David Brown.",
            "5 5 5, 4 0 7, 1 2 6 2.",
            "Yes.",
            "Yes.",
        ],
        {
            "service": "filling",
            "day": "Friday",
            "time": "15:00",
            "name": "David Brown",
            "phone": "5554071262",
        },
    ),
    Scenario(
        "caller hangs up early",
        ["Hi, I want to book a cleaning.", "Tuesday."],
        {"service": "cleaning", "day": "Tuesday"},
        outcome="caller_left",
    ),
    Scenario(
        "spelled surname",
        [
            "I'd like a check-up please.",
            "Monday at 11 am.",
            "It's Peter Kowalski. K, O, W, A, L, S, K, I.",
            "5 5 5, 3 0 3, 4 0 4 0.",
            "Yes.",
            "Yes.",
        ],
        {
            "service": "check-up",
            "day": "Monday",
            "time": "11:00",
            "name": "Peter Kowalski",
            "phone": "5553034040",
        },
    ),
    Scenario(
        "number dictated in words",
        [
            "A cleaning on Thursday at 10 am, please.",
            "My name is David Brown.",
            "Five five five, one two three, four five six seven.",
            "Yes.",
            "Yes.",
        ],
        CLEANING,
    ),
    Scenario(
        "number corrected at its read-back",
        [
            "I'd like to book a whitening on Friday at 1 pm.",
            "This is Mary Johnson.",
            "5 5 5, 1 2 3, 0 8 0 9.",
            "No, it's 5 5 5, 9 8 7, 6 5 4 3.",
            "Yes.",
            "Yes.",
        ],
        {
            "service": "whitening",
            "day": "Friday",
            "time": "13:00",
            "name": "Mary Johnson",
            "phone": "5559876543",
        },
    ),
    Scenario(
        "time said as half past",
        [
            "I need a check-up on Wednesday.",
            "Half past three.",
            "My name is James Wilson.",
            "5 5 5, 7 6 5, 4 3 2 1.",
            "Yes.",
            "Yes please.",
        ],
        {
            "service": "check-up",
            "day": "Wednesday",
            "time": "15:30",
            "name": "James Wilson",
            "phone": "5557654321",
        },
    ),
    Scenario(
        "toothache",
        [
            "I have a terrible toothache, it really hurts.",
            "Today if possible, it's Monday.",
            "8 am, as early as you can.",
            "My name is Sarah Jones.",
            "5 5 5, 1 7 1, 2 3 9 2.",
            "Yes.",
            "Yes.",
        ],
        {
            "service": "emergency",
            "day": "Monday",
            "time": "08:00",
            "name": "Sarah Jones",
            "phone": "5551712392",
        },
    ),
    Scenario(
        "a part of the day",
        [
            "Can I book a whitening?",
            "Saturday morning would be great.",
            "My name is Tom Baker.",
            "5 5 5, 2 4 6, 8 1 0 0.",
            "Yes.",
            "Yes.",
        ],
        {
            "service": "whitening",
            "day": "Saturday",
            "time": "09:00",
            "name": "Tom Baker",
            "phone": "5552468100",
        },
    ),
    Scenario(
        "a closed day is refused",
        [
            "I'd like a cleaning on Sunday.",
            "Friday then.",
            "At 10 am.",
            "My name is David Brown.",
            "5 5 5, 1 2 3, 4 5 6 7.",
            "Yes.",
            "Yes.",
        ],
        {**CLEANING, "day": "Friday"},
    ),
    Scenario(
        "asks for a person",
        [
            "Can I talk to a real person?",
            "Okay, a cleaning then.",
            "Thursday at 10 am.",
            "My name is David Brown.",
            "5 5 5, 1 2 3, 4 5 6 7.",
            "Yes.",
            "Yes.",
        ],
        CLEANING,
    ),
    Scenario(
        "a time after hours is refused",
        [
            "I want a check-up on Tuesday at 7 pm.",
            "4 pm then.",
            "My name is Grace Kim.",
            "5 5 5, 9 0 9, 1 2 3 4.",
            "Yes.",
            "Yes.",
        ],
        {
            "service": "check-up",
            "day": "Tuesday",
            "time": "16:00",
            "name": "Grace Kim",
            "phone": "5559091234",
        },
    ),
    Scenario(
        "lost filling",
        [
            "I think I lost a filling while eating.",
            "Thursday at noon.",
            "My name is Ben Carter.",
            "5 5 5, 6 0 4, 7 1 8 0.",
            "Yes.",
            "Yes.",
        ],
        {
            "service": "filling",
            "day": "Thursday",
            "time": "12:00",
            "name": "Ben Carter",
            "phone": "5556047180",
        },
    ),
    Scenario(
        "asks where the clinic is",
        [
            "Where are you located?",
            "Great. I'd like a cleaning on Monday at 9 am.",
            "My name is David Brown.",
            "5 5 5, 1 2 3, 4 5 6 7.",
            "Yes.",
            "Yes.",
        ],
        {**CLEANING, "day": "Monday", "time": "09:00"},
    ),
    Scenario(
        "changes the time after a no",
        [
            "A cleaning on Thursday at 10 am please.",
            "My name is David Brown.",
            "5 5 5, 1 2 3, 4 5 6 7.",
            "Yes.",
            "No.",
            "The time.",
            "11 am.",
            "Yes.",
        ],
        {**CLEANING, "time": "11:00"},
    ),
    Scenario(
        "asks about prices",
        [
            "How much does a cleaning cost?",
            "Okay. Tuesday at 2 pm.",
            "This is Nina Patel.",
            "5 5 5, 3 1 3, 2 0 2 0.",
            "Yes.",
            "Yes.",
        ],
        {
            "service": "cleaning",
            "day": "Tuesday",
            "time": "14:00",
            "name": "Nina Patel",
            "phone": "5553132020",
        },
    ),
    Scenario(
        "says goodbye before booking",
        ["I'd like a check-up.", "Actually, never mind. Goodbye."],
        {"service": "check-up"},
        outcome="agent_ended_early",
    ),
    Scenario(
        "hangs up at the read-back",
        [
            "A cleaning on Thursday at 10 am.",
            "My name is David Brown.",
            "5 5 5, 1 2 3, 4 5 6 7.",
            "Yes.",
        ],
        CLEANING,
        outcome="caller_left",
    ),
    Scenario(
        "corrects the service",
        [
            "I'd like a filling, no sorry, a cleaning.",
            "Wednesday at 10 am.",
            "My name is David Brown.",
            "5 5 5, 1 2 3, 4 5 6 7.",
            "Yes.",
            "Yes.",
        ],
        {**CLEANING, "day": "Wednesday"},
    ),
]


class RepeatingCaller(SimulatedCallee):
    """A scripted caller who, told "Sorry, I didn't catch that", says the same line once
    more, as people do (the agent's words are read from the in-process session). The
    second try is a second recording of the line (``again``: Piper samples its voice
    afresh each time), as a person never says a line twice the same: replaying the
    identical audio to an ear that is deterministic on its input only repeats its
    mistake. Repeats are counted in the report."""

    def __init__(self, *args: Any, session_of: Any, again: list[CalleeLine], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session_of = session_of
        self._again = again
        self.repeats = 0
        self.said_audio: list[np.ndarray] = []  # what each said line sounded like

    def _last_agent_line(self) -> str:
        session = self._session_of(self.call_id)
        if session is None:
            return ""
        return next((e.text for e in reversed(session.transcript) if e.speaker == "agent"), "")

    async def _script(self) -> None:
        since = 0.0
        if self.wait_for_greeting:
            await self._wait_agent_done(since)
        for line, second in zip(self.lines, self._again, strict=True):
            for attempt in (1, 2):
                if self._closed.is_set():
                    return
                audio = line.audio if attempt == 1 else second.audio
                assert audio is not None
                said = SaidLine(line.text, self._now())
                self.report.said.append(said)
                self.said_audio.append(audio)
                self._speech_done.clear()
                self._speech.extend(to_mulaw_frames(audio))
                await self._speech_done.wait()
                said.ended_at = self._now()
                since = said.ended_at
                replied = await self._wait_agent_done(since)
                first = next((t for t in self.report.media_times if t >= since), None)
                self.report.reply_latency_ms.append(
                    round((first - since) * 1000, 1) if first is not None and replied else None
                )
                if attempt == 1 and "didn't catch" in self._last_agent_line():
                    self.repeats += 1
                    continue
                break


async def run_booking_call(
    harness: Harness, lines: list[CalleeLine], again: list[CalleeLine]
) -> tuple[list[dict[str, Any]], CalleeReport, int]:
    """One call by a RepeatingCaller; its turns (``latency.turns_of_call``), the report and
    how many lines the caller had to repeat."""
    call_id = new_call_id()
    callee = RepeatingCaller(
        harness.server.media_url,
        lines,
        agent_id=DEMO_AGENT_ID,
        call_id=call_id,
        token=await harness.phone.mint_token(call_id, DEMO_AGENT_ID),
        session_of=harness.sessions.get,
        again=again,
    )
    report = await callee.run()
    await harness.store.wait_final(callee.call_id, 30)
    session = harness.sessions.pop(callee.call_id, None)
    turns = turns_of_call(report, callee_t0(callee), session, callee.said_audio)
    return turns, report, callee.repeats


def flow_agent(model_tools_url: str | None) -> AgentConfig:
    """The demo agent as shipped (the dental flow, default reply length), or the same flow
    reading values through a model's tool calls at ``model_tools_url``."""
    flow = DENTAL_FLOW
    update: dict[str, Any] = {
        "flow": flow,
        # The silence prompt must not fire while the scripted caller thinks.
        "end_call": EndCallConfig(silence_timeout_s=20.0),
    }
    if model_tools_url:
        update["flow"] = flow.model_copy(update={"extraction": "tools"})
        update["llm"] = LLMConfig(base_url=model_tools_url, model="scripted-tools")
    return DEMO_AGENT.model_copy(update=update)


def judge(scenario: Scenario, record: Any) -> tuple[bool, str]:
    flow = (record.flow if record is not None else None) or {}
    values = flow.get("values", {})
    agent_lines = [
        e for e in (record.transcript if record is not None else []) if e["speaker"] == "agent"
    ]
    heard_readback = any(
        "Shall I book it?" in e["text"] and not e.get("interrupted") for e in agent_lines
    )
    reason = (record.end_reason or "") if record is not None else "no record"
    problems = []
    if values != scenario.expected:
        problems.append(f"values {values} != expected {scenario.expected}")
    if scenario.outcome == "booked":
        if not heard_readback:
            problems.append("read-back not heard")
        if not flow.get("completed") or not reason.startswith("agent_ended"):
            problems.append(f"not booked: completed={flow.get('completed')} end={reason}")
    elif scenario.outcome == "caller_left":
        if flow.get("completed") or not reason.startswith("caller_hangup"):
            problems.append(f"expected the caller to leave: end={reason}")
    elif scenario.outcome == "agent_ended_early":
        if flow.get("completed") or not reason.startswith("agent_ended"):
            problems.append(f"expected a goodbye: end={reason}")
    return not problems, "; ".join(problems)


async def scripted_tools_server(scenarios: list[Scenario]) -> Any:
    """An OpenAI-compatible chat endpoint that answers each request with one streamed
    ``record_answer`` tool call: the scripted values of the caller line nearest to the
    transcript it was sent (what a capable model would read)."""
    table: list[tuple[str, dict[str, Any]]] = []
    for sc in scenarios:
        for line, values in zip(sc.lines, sc.extracted or [{}] * len(sc.lines), strict=False):
            table.append((line, values))

    def nearest(text: str) -> dict[str, Any]:
        # The most similar line by characters: counting shared words would take "I'd
        # like to book a filling." for another scenario's "... book a cleaning."
        heard = text.lower()
        best = max(
            table, key=lambda t: SequenceMatcher(None, heard, t[0].lower()).ratio(), default=None
        )
        return best[1] if best else {}

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> StreamingResponse:
        body = await request.json()
        # The prewarm and the post-call analysis also ask; they get a plain "Okay."
        user = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        tools = body.get("tools") or []

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            data = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "scripted"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(data)}\n\n"

        def events() -> list[str]:
            if any(t["function"]["name"] == "record_answer" for t in tools):
                call = {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "record_answer", "arguments": json.dumps(nearest(user))},
                }
                out = [chunk({"role": "assistant", "tool_calls": [call]}), chunk({}, "tool_calls")]
            else:
                out = [chunk({"role": "assistant", "content": "Okay."}), chunk({}, "stop")]
            return [*out, "data: [DONE]\n\n"]

        return StreamingResponse(iter(events()), media_type="text/event-stream")

    server = BackgroundServer(app, "127.0.0.1", 0, log_level="warning")
    await server.start()
    return server, f"{server.base_url}/v1"


def model_readings(sc: Scenario) -> list[dict[str, Any]]:
    """What a capable model reads from each scripted line: the values it introduces."""
    out: list[dict[str, Any]] = []
    for line in sc.lines:
        low = line.lower().strip(". ")
        reading: dict[str, Any] = {
            slot.name: line
            for slot in DENTAL_FLOW.slots
            if parse_slot(slot, line, asked=slot.type == "name" and "name" in low) is not None
            and not (slot.type == "phone" and len(digits(line)) < 7)
        }
        if low in ("yes", "yes please", "that's right", "yes, that's correct"):
            reading["confirmed"] = True
        if low.startswith("no"):
            reading["confirmed"] = False
        out.append(reading)
    return out


def flow_cost_ms(scenarios: list[Scenario]) -> dict[str, float]:
    """What the flow itself costs per caller turn (the typed parsers and the state
    machine, on the scripted words), apart from the ear and the voice: the issue's
    budget is ~50 ms over a free-form turn."""
    costs = []
    for sc in scenarios:
        machine = FlowMachine(DENTAL_FLOW, today=0)
        machine.start()
        for line in sc.lines:
            t = time.perf_counter()
            machine.hear(line)
            costs.append((time.perf_counter() - t) * 1000)
    return summary(costs)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    scenarios = SCENARIOS if args.only is None else SCENARIOS[: args.only]
    if args.scenario:
        scenarios = [sc for sc in SCENARIOS if sc.name in args.scenario]
    stub = None
    url = None
    if args.model_tools:
        for sc in scenarios:
            sc.extracted = model_readings(sc)
        stub, url = await scripted_tools_server(scenarios)
    results = []
    turns: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        async with running_server(flow_agent(url)) as harness:
            for i, sc in enumerate(scenarios):
                lines = await caller_lines(harness.engine.tts, sc.lines)
                again = await caller_lines(harness.engine.tts, sc.lines)  # a second try
                call_turns, report, repeats = await run_booking_call(harness, lines, again)
                record = await harness.store.get(report.call_id)
                ok, why = judge(sc, record)
                heard = [e["text"] for e in (record.transcript if record else [])]
                results.append(
                    {"scenario": sc.name, "ok": ok, "why": why, "caller_repeated": repeats}
                    | ({} if ok else {"transcript": heard})
                )
                turns.extend(t for t in call_turns if "response" in t)
                print(f"[{i + 1}/{len(scenarios)}] {'OK  ' if ok else 'FAIL'} {sc.name} {why}")
                if not ok:
                    for line in heard:
                        print("      ", line)
    finally:
        if stub is not None:
            await stub.stop()
    passed = sum(r["ok"] for r in results)
    repeated = sum(r["caller_repeated"] for r in results)
    report = {
        "benchmark": "conversations",
        "config": {
            "agent": "demo flow (gateway/demo_flow.py), default reply length, analysis on",
            "extraction": "model tool calls (scripted stub)" if args.model_tools else "rules",
            "calls": len(results),
        },
        "success_rate": round(passed / max(1, len(results)), 3),
        "passed": passed,
        "lines_repeated": repeated,
        "lines_said": sum(len(sc.lines) for sc in scenarios),
        "failures": [r for r in results if not r["ok"]],
        "flow_cost_ms": flow_cost_ms(scenarios),
        "response_ms": summary([t["response"] for t in turns]),
        "voice_to_voice_ms": summary([t["voice_to_voice"] for t in turns]),
        "wall_s": round(time.monotonic() - started, 1),
        "loadavg": loadavg(),
        "machine": machine(),
    }
    return report


def render(report: dict[str, Any]) -> str:
    lines = [
        "# Booking conversations (benchmarks/conversations.py)",
        "",
        f"Config: {report['config']}",
        "",
        f"**Success: {report['passed']}/{report['config']['calls']} "
        f"({report['success_rate'] * 100:.0f} %)** (goal >= 90 %)",
        "",
        f'Lines the caller had to say again after "Sorry, I didn\'t catch that": '
        f"{report['lines_repeated']} of {report['lines_said']}",
        "",
        f"Response (end of turn -> first agent audio at the caller), ms: {report['response_ms']}",
        "",
        f"Voice to voice, ms: {report['voice_to_voice_ms']}",
        "",
        f"The flow's own cost per turn (parsers + state machine), ms: {report['flow_cost_ms']}",
        "",
        f"Wall time {report['wall_s']} s; load average {report['loadavg']}",
        "",
    ]
    if report["failures"]:
        lines.append("Failures:")
        for f in report["failures"]:
            lines.append(f"- {f['scenario']}: {f['why']}")
            # The call as the server heard it: agent and caller lines in turn.
            lines.extend(f"  - {line}" for line in f.get("transcript", []))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=int, default=None, help="the first N scenarios")
    parser.add_argument("--scenario", action="append", help="only this one (repeatable)")
    parser.add_argument("--model-tools", action="store_true", help="values via tool calls")
    parser.add_argument("--no-publish", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="the server's call logs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    report = asyncio.run(main_async(args))
    text = render(report)
    print(text)
    if not args.no_publish:
        name = "conversations.model-tools" if args.model_tools else "conversations"
        publish(name, report, text)


if __name__ == "__main__":
    main()
