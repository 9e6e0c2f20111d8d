"""End-to-end turn latency over the real phone protocol, against the latency budget.

A real server (the whole app, uvicorn on 127.0.0.1) answers simulated callers
that speak over real WebSockets (Twilio Media Streams: base64 mu-law 8 kHz, one
``media`` message per 20 ms of real time). Each caller line is synthesized
speech with its trailing silence trimmed, so the instant the caller stopped
speaking is known exactly on the caller's clock. Server and callers share one
process and therefore one monotonic clock: the server's own marks (endpoint
decision, STT final, ...) are read as absolute ``time.monotonic()`` values from
the live session and compared directly with the caller's receive times.

    python -m benchmarks.latency [--turns 30] [--budget-ms 200] [--lines-per-call 6]

Definitions (every clock, start and stop): benchmarks/METHOD.md.
Not a pass/fail test: it reports numbers and a verdict; machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from api.app import create_app
from api.server import BackgroundServer
from api.settings import ServerSettings
from benchmarks.stats import machine, publish, summary
from gateway.agents import DEMO_AGENT, DEMO_AGENT_ID, InMemoryAgentDirectory
from gateway.calls import new_call_id
from gateway.simulated.callee import CalleeLine, CalleeReport, SimulatedCallee, synthesize
from voice_core.config import AgentConfig, LLMConfig
from voice_core.engine import VoiceEngine
from voice_core.session import CallSession

CALLER_LINES = (
    "Hello, I would like to book a teeth cleaning for next Tuesday.",
    "Do you have anything available in the morning, around nine?",
    "My name is Maria Lopez, and I am already a patient with you.",
    "Can you tell me how much a regular checkup costs without insurance?",
    "I have had a bad toothache since yesterday evening, it really hurts.",
    "Is there parking near the clinic, or should I take the bus?",
    "Could you move my appointment from Thursday to Friday afternoon?",
    "Do you accept children, my son is seven years old?",
    "What are your opening hours on Saturday?",
    "I think I lost a filling while eating, what should I do?",
    "Can I pay with a credit card at the front desk?",
    "Do you also do teeth whitening, and how long does it take?",
)

# Speech is "voiced" while a 10 ms window is within this many dB of the line's
# loudest window; Piper's tail decays into near-silence, which is not speech.
VOICED_FLOOR_DB = 40.0
_WINDOW = 160  # 10 ms at 16 kHz
_FRAME_S = 0.02

# Reply stages in pipeline order: (name, start mark, end mark). "stt" starts at the
# caller's last voiced frame as the server saw it, so it includes the speculative
# pause before transcription starts; "playout" is the time a synthesized reply waits
# for the playout loop (and for the end-of-turn decision); "transport" is from the
# frame handed to the WebSocket to its arrival at the caller.
CRITICAL_PATH = (
    ("stt", "speech_end", "stt_final"),
    ("llm_first_token", "stt_final", "llm_first_token"),
    ("first_clause", "llm_first_token", "first_clause"),
    ("tts_first_audio", "first_clause", "tts_first_audio"),
    ("playout", "tts_first_audio", "first_audio_out"),
    ("transport", "first_audio_out", "first_rx"),
)
SERVER_STAGES = (
    "endpointing_wait",
    "stt",
    "llm_first_token",
    "first_clause",
    "tts_first_audio",
    "response",
    "voice_to_voice",
)


# ---------------------------------------------------------------- caller audio


def last_voiced_sample(audio: np.ndarray, floor_db: float = VOICED_FLOOR_DB) -> int:
    """Index one past the last sample of the last voiced 10 ms window (0 if none)."""
    n = audio.size // _WINDOW
    if n == 0:
        return 0
    windows = audio[: n * _WINDOW].astype(np.float64).reshape(n, _WINDOW)
    rms = np.sqrt((windows**2).mean(axis=1))
    if rms.max() <= 0:
        return 0
    voiced = np.nonzero(rms >= rms.max() * 10 ** (-floor_db / 20))[0]
    return int(voiced[-1] + 1) * _WINDOW


def trim_trailing_silence(audio: np.ndarray) -> np.ndarray:
    """The line up to its last voiced window: its end is the true end of speech."""
    return audio[: last_voiced_sample(audio)]


def frame_padding_s(audio16k: np.ndarray) -> float:
    """Zero padding the callee adds after the speech to fill its last 20 ms frame."""
    duration = audio16k.size / 16000
    frames = -(-audio16k.size // 320)
    return frames * _FRAME_S - duration


async def caller_lines(tts: Any, texts: list[str]) -> list[CalleeLine]:
    lines = []
    for text in texts:
        audio = trim_trailing_silence(await synthesize(tts, text))
        lines.append(CalleeLine(text, audio=audio))
    return lines


# ---------------------------------------------------------------- server


@dataclass
class Harness:
    server: BackgroundServer
    engine: VoiceEngine
    sessions: dict[str, CallSession] = field(default_factory=dict)

    @property
    def store(self) -> Any:
        return self.server.app.state.voxline.store

    @property
    def phone(self) -> Any:
        return self.server.app.state.voxline.phone


def bench_agent(max_tokens: int | None = None, welcome: bool = True) -> AgentConfig:
    """The demo receptionist with the product's default reply length, or replies capped
    at ``max_tokens`` (``--max-tokens``: shorter runs; a long reply's decoding competes
    with the synthesis of its first clause, so the cap flatters the tail)."""
    update: dict[str, Any] = {}
    if max_tokens is not None:
        update["llm"] = LLMConfig(max_tokens=max_tokens)
    if not welcome:
        update["welcome_message"] = ""
    return DEMO_AGENT.model_copy(update=update)


@asynccontextmanager
async def running_server(
    agent: AgentConfig, *, analysis: bool = True, **more_agents: AgentConfig
) -> Any:
    """The whole app on 127.0.0.1 as ``voxline serve`` runs it (post-call analysis on,
    unless ``analysis`` is False: ``--no-analysis``), every session captured so its
    marks can be read as absolute monotonic times."""
    with tempfile.TemporaryDirectory(prefix="voxline-bench-") as data_dir:
        settings = ServerSettings(_env_file=None, data_dir=data_dir, analysis_enabled=analysis)
        engine = VoiceEngine(settings.engine)
        harness_sessions: dict[str, CallSession] = {}
        new_session = engine.new_session

        def capturing(agent_config: AgentConfig, **kwargs: Any) -> CallSession:
            session = new_session(agent_config, **kwargs)
            harness_sessions[kwargs.get("call_id", "")] = session
            return session

        engine.new_session = capturing  # type: ignore[method-assign]
        agents = InMemoryAgentDirectory(default_agent_id=DEMO_AGENT_ID)
        agents.add(DEMO_AGENT_ID, agent)
        for agent_id, config in more_agents.items():
            agents.add(agent_id, config)
        app = create_app(settings, engine, agents=agents)
        server = BackgroundServer(app)
        await server.start()
        try:
            yield Harness(server, engine, harness_sessions)
        finally:
            await server.stop()


# ---------------------------------------------------------------- one call


def callee_t0(callee: SimulatedCallee) -> float:
    # The callee's times are seconds since its stream opened, read from the event
    # loop's clock (time.monotonic); its start instant puts them on the server's clock.
    return callee._t0


def turns_of_call(
    report: CalleeReport,
    t0: float,
    session: CallSession | None,
    line_audio: list[np.ndarray],
) -> list[dict[str, Any]]:
    """One dict per caller line: caller-side clocks plus the server's marks for the
    turn that answered it (absolute monotonic seconds, then milliseconds)."""
    metrics = list(session.turn_metrics) if session is not None else []
    media = [t0 + t for t in report.media_times]
    turns = []
    for i, said in enumerate(report.said):
        row: dict[str, Any] = {"call_id": report.call_id, "line": i, "text": said.text}
        if said.ended_at is None or i >= len(line_audio):
            row["missing"] = "line not finished"
            turns.append(row)
            continue
        # The last line frame left at ended_at, carrying audio that ends there; the
        # trimmed speech ends ``pad`` before it (zeros filling the last frame).
        true_end = t0 + said.ended_at - frame_padding_s(line_audio[i])
        next_start = t0 + report.said[i + 1].started_at if i + 1 < len(report.said) else None
        first_rx = next(
            (t for t in media if t >= true_end and (next_start is None or t < next_start)), None
        )
        # The server turn whose endpoint falls after this line's end and before the next.
        turn = next(
            (
                m
                for m in metrics
                if "endpoint" in m.marks
                and m.marks["endpoint"] >= true_end
                and (next_start is None or m.marks["endpoint"] < next_start)
            ),
            None,
        )
        if first_rx is None or turn is None:
            row["missing"] = "no reply" if first_rx is None else "no server turn"
            turns.append(row)
            continue
        marks = dict(turn.marks)
        marks["first_rx"] = first_rx
        endpoint = marks["endpoint"]
        row.update(
            {
                "voice_to_voice": round((first_rx - true_end) * 1000, 1),
                "response": round((first_rx - endpoint) * 1000, 1),
                "inbound": round((marks["speech_end"] - true_end) * 1000, 1)
                if "speech_end" in marks
                else None,
                "server": dict(turn.stages_ms),
                "budget_share": budget_share(marks),
            }
        )
        turns.append(row)
    return turns


def budget_share(marks: dict[str, float]) -> dict[str, float]:
    """How much of endpoint -> first audio received each stage accounts for: the part
    of the stage's interval that lies after the end-of-turn decision. Stages that ran
    speculatively and finished during the endpointing wait cost the caller nothing.
    The shares sum to the response latency."""
    endpoint = marks["endpoint"]
    share: dict[str, float] = {}
    for name, start, end in CRITICAL_PATH:
        if start not in marks or end not in marks:
            continue
        s = max(marks[start], endpoint)
        share[name] = round(max(0.0, marks[end] - s) * 1000, 1)
    return share


async def run_call(
    harness: Harness,
    lines: list[CalleeLine],
    *,
    agent_id: str = DEMO_AGENT_ID,
    wait_for_greeting: bool = True,
) -> tuple[list[dict[str, Any]], CalleeReport]:
    """One call; its turns (see ``turns_of_call``) and what the caller noticed."""
    call_id = new_call_id()
    callee = SimulatedCallee(
        harness.server.media_url,
        lines,
        agent_id=agent_id,
        wait_for_greeting=wait_for_greeting,
        call_id=call_id,
        token=await harness.phone.mint_token(call_id, agent_id),  # as a carrier's TwiML carries
    )
    report = await callee.run()
    await harness.store.wait_final(callee.call_id, 30)
    session = harness.sessions.pop(callee.call_id, None)
    turns = turns_of_call(report, callee_t0(callee), session, [x.audio for x in lines])
    return turns, report


# ---------------------------------------------------------------- report


def loadavg() -> list[float]:
    try:
        return [float(x) for x in open("/proc/loadavg").read().split()[:3]]
    except OSError:
        return []


def summarize(turns: list[dict[str, Any]], budget_ms: float) -> dict[str, Any]:
    """Percentiles, the verdict and the stage that eats the budget, from per-turn rows."""
    ok = [t for t in turns if "missing" not in t]
    response = [t["response"] for t in ok]
    out: dict[str, Any] = {
        "turns_measured": len(ok),
        "turns_missing": len(turns) - len(ok),
        "response_ms": summary(response),
        "voice_to_voice_ms": summary([t["voice_to_voice"] for t in ok]),
        "inbound_ms": summary([t["inbound"] for t in ok if t.get("inbound") is not None]),
        "server_stages_ms": {
            s: summary([t["server"][s] for t in ok if s in t["server"]]) for s in SERVER_STAGES
        },
        "budget_share_ms": {
            name: summary([t["budget_share"][name] for t in ok if name in t["budget_share"]])
            for name, _, _ in CRITICAL_PATH
        },
        "budget_ms": budget_ms,
    }
    over = [t for t in ok if t["response"] > budget_ms]
    out["turns_over_budget"] = len(over)
    p95 = out["response_ms"].get("p95")
    if p95 is None:
        out["verdict"] = "NO DATA"
    elif p95 <= budget_ms and not out["turns_missing"]:
        out["verdict"] = "PASS"
    else:
        out["verdict"] = "MISS"
    # Mean share of each stage over the turns that missed (or all turns, if none did).
    pool = over or ok
    means = {
        name: round(float(np.mean([t["budget_share"].get(name, 0.0) for t in pool])), 1)
        for name, _, _ in CRITICAL_PATH
    }
    out["mean_share_over_budget_ms" if over else "mean_share_ms"] = means
    if over:
        out["eaten_by"] = max(means, key=lambda k: means[k])
    return out


def verdict_line(s: dict[str, Any]) -> str:
    r = s["response_ms"]
    if not r:
        return "Verdict: **NO DATA** (no turn was measured)."
    line = (
        f"Verdict: **{s['verdict']}** — response p50 {r['p50']:.0f} ms, p95 {r['p95']:.0f} ms, "
        f"max {r['max']:.0f} ms against a {s['budget_ms']:.0f} ms budget (verdict on p95); "
        f"{s['turns_over_budget']} of {s['turns_measured']} turns over budget"
    )
    if s["turns_missing"]:
        line += f", {s['turns_missing']} turns unanswered"
    line += "."
    if s.get("eaten_by"):
        means = s["mean_share_over_budget_ms"]
        parts = ", ".join(f"{k} {v:.0f}" for k, v in means.items())
        line += (
            f" In the turns over budget, **{s['eaten_by']}** eats it "
            f"(mean ms after the end-of-turn decision: {parts})."
        )
    return line


def table(rows: Iterator[tuple[str, dict[str, float]]]) -> list[str]:
    out = ["| measure | n | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|"]
    for name, s in rows:
        if s:
            out.append(f"| {name} | {s['n']} | {s['p50']} | {s['p95']} | {s['max']} |")
    return out


def summary_rows(s: dict[str, Any]) -> Iterator[tuple[str, dict[str, float]]]:
    yield "**response** (end-of-turn decision → first agent audio received)", s["response_ms"]
    yield (
        "voice-to-voice (true end of caller speech → first agent audio received)",
        s["voice_to_voice_ms"],
    )
    yield "inbound (true end of speech → server's last voiced frame)", s["inbound_ms"]
    labels = {
        "endpointing_wait": "server: endpointing wait (last voiced frame → decision)",
        "stt": "server: STT final (transcription start → final)",
        "llm_first_token": "server: LLM first token (STT final → token)",
        "first_clause": "server: first clause (first token → clause)",
        "tts_first_audio": "server: TTS first audio (clause → audio)",
        "response": "server: response (decision → frame handed to transport)",
        "voice_to_voice": "server: voice-to-voice (last voiced frame → frame handed out)",
    }
    for stage, label in labels.items():
        yield label, s["server_stages_ms"].get(stage, {})
    for stage, st in s["budget_share_ms"].items():
        yield f"after the decision: {stage}", st


def analyses_line(a: dict[str, Any] | None) -> str:
    if not a:
        return ""
    return (
        f"\n\nPost-call analyses: {a['states']} {a['drain_s']} s after the last call; "
        f"{a['preempted']} runs cancelled for a live turn and rerun."
    )


def replies_text(cfg: dict[str, Any]) -> str:
    """How the run was configured, as the report says it: the product default or not."""
    cap = cfg.get("max_tokens")
    replies = (
        f"replies capped at {cap} tokens (--max-tokens)"
        if cap is not None
        else f"default reply length ({LLMConfig().max_tokens} tokens)"
    )
    analysis = cfg.get("analysis", True)
    text = replies + (", post-call analysis on" if analysis else ", post-call analysis off")
    pending = cfg.get("pending_analyses")
    if pending:
        text += f", measured with the analyses of {pending} finished calls pending"
    return text


def to_markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    s = r["summary"]
    cfg = r["config"]
    return (
        f"# Turn latency over the phone protocol — {m['date']}\n\n"
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; "
        f"load average (1 min) {r['load_before'][:1]} before, {r['load_after'][:1]} after. "
        f"Models: {r['models']}. {r['calls']} calls × {cfg['lines_per_call']} lines, "
        f"end-of-turn silence {cfg['end_of_turn_silence_ms']} ms, speculative after "
        f"{cfg['speculative_silence_ms']} ms, playout lead {cfg['playout_lead_ms']} ms, "
        f"{replies_text(cfg)}. Run time {r['wall_s']:.0f} s.\n\n"
        + "\n".join(table(summary_rows(s)))
        + "\n\n"
        + verdict_line(s)
        + analyses_line(r.get("analyses"))
        + "\n\nClocks: benchmarks/METHOD.md. `after the decision: X` is the part of stage X "
        "that lies after the end-of-turn decision (the rest overlapped the endpointing "
        "wait); those parts sum to the response latency.\n"
    )


# ---------------------------------------------------------------- main


async def analyses_finished(harness: Harness, timeout_s: float) -> dict[str, Any]:
    """Wait (bounded) until every call's post-call analysis is done or failed: analysis
    gives way to live turns, but it must still complete for every call."""
    from sqlalchemy import func, select

    from api.postcall.models import AnalysisJob

    sessions = harness.server.app.state.db_sessions
    waited = time.monotonic()
    states: dict[str, int] = {}
    while time.monotonic() - waited < timeout_s:
        async with sessions() as db:
            rows = await db.execute(
                select(AnalysisJob.state, func.count()).group_by(AnalysisJob.state)
            )
            states = {state: n for state, n in rows.all()}
        if not states.get("pending") and not states.get("running"):
            break
        await asyncio.sleep(0.5)
    return {
        "states": states,
        "drain_s": round(time.monotonic() - waited, 1),
        "preempted": harness.engine.live_work.preemptions,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    agent = bench_agent(args.max_tokens)
    load_before = loadavg()
    started = time.monotonic()
    async with running_server(agent, analysis=not args.no_analysis) as harness:
        texts = [CALLER_LINES[i % len(CALLER_LINES)] for i in range(args.turns)]
        lines = await caller_lines(harness.engine.tts, texts)
        turns: list[dict[str, Any]] = []
        calls = 0
        for i in range(args.pending_analyses):
            # Finished calls whose analyses are still pending while the measured ones run.
            await run_call(harness, lines[i % len(lines) : i % len(lines) + 1])
        for i in range(0, len(lines), args.lines_per_call):
            turns += (await run_call(harness, lines[i : i + args.lines_per_call]))[0]
            calls += 1
            done = [t for t in turns if "missing" not in t]
            print(
                f"call {calls}: {len(done)}/{len(turns)} turns measured, last response "
                f"{done[-1]['response'] if done else '-'} ms",
                flush=True,
            )
        engine = harness.engine
        models = f"{engine.stt.name}, smollm2-135m q4_1 (llama.cpp), {engine.tts.name}"
        analyses = None if args.no_analysis else await analyses_finished(harness, 900)
    ep = agent.endpointing
    return {
        "machine": machine(),
        "load_before": load_before,
        "load_after": loadavg(),
        "wall_s": round(time.monotonic() - started, 1),
        "models": models,
        "transport": "phone media stream (WebSocket, mu-law 8 kHz)",
        "calls": calls,
        "config": {
            "lines_per_call": args.lines_per_call,
            "end_of_turn_silence_ms": ep.end_of_turn_silence_ms,
            "speculative_silence_ms": ep.speculative_silence_ms,
            "playout_lead_ms": engine.settings.playout_lead_ms,
            "max_tokens": args.max_tokens,
            "analysis": not args.no_analysis,
            "pending_analyses": args.pending_analyses,
            "voiced_floor_db": VOICED_FLOOR_DB,
        },
        "analyses": analyses,
        "summary": summarize(turns, args.budget_ms),
        "turns": turns,
    }


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--budget-ms", type=float, default=200.0, help="response latency budget")
    p.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="cap replies (default: the agent's default length, as the product runs)",
    )
    p.add_argument(
        "--no-analysis", action="store_true", help="post-call analysis off (default: on)"
    )
    return p


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=30)
    p.add_argument("--lines-per-call", type=int, default=6)
    p.add_argument(
        "--pending-analyses",
        type=int,
        default=0,
        help="first place this many one-line calls, so their analyses are pending "
        "while the measured calls run",
    )
    p.add_argument("--name", default="latency", help="results file name")
    args = p.parse_args()
    report = asyncio.run(main_async(args))
    md = to_markdown(report)
    publish(args.name, report, md)


if __name__ == "__main__":
    main()
