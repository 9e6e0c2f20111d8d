"""Engine latency on the embedded models: per-stage p50/p95 for real spoken turns.

Drives CallSessions in process at real-time pace (20 ms frames, real silences)
with synthesized caller speech, so endpointing, speculation and playout pacing
behave exactly as on a call; only the transport is absent (see latency.py for
the phone protocol end to end). Also times STT finals for 3-5 s utterances alone.

    python -m benchmarks.engine [--turns 12] [--budget-ms 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from benchmarks.stats import machine, publish, summary
from voice_core.audio.frames import FRAME_SAMPLES
from voice_core.config import AgentConfig, EndCallConfig, EngineSettings
from voice_core.engine import VoiceEngine
from voice_core.events import AgentReply, TurnMetrics

CALLER_LINES = [
    "Hello, I would like to book a teeth cleaning for next Tuesday.",
    "Do you have anything available in the morning, around nine?",
    "My name is Maria Lopez, and I am already a patient with you.",
    "Can you tell me how much a regular checkup costs without insurance?",
    "I have had a bad toothache since yesterday evening, it really hurts.",
    "Is there parking near the clinic, or should I take the bus?",
    "Could you move my appointment from Thursday to Friday afternoon?",
    "Do you accept children, my son is seven years old?",
    "What are your opening hours on Saturday?",
    "Thank you, that is everything I needed for today.",
    "I think I lost a filling while eating, what should I do?",
    "Can I pay with a credit card at the front desk?",
]

AGENT = AgentConfig(
    name="Bright Smile Dental",
    system_prompt=(
        "You are the receptionist of Bright Smile Dental, a dental clinic open Monday to "
        "Friday 8am to 6pm and Saturday 9am to noon. Answer the caller in one short, "
        "friendly spoken sentence."
    ),
    welcome_message="Thank you for calling Bright Smile Dental, how can I help you?",
    end_call=EndCallConfig(end_call_tool=False, silence_timeout_s=120),
)


async def feed_realtime(session, samples: np.ndarray) -> None:
    """Push frames on a 20 ms clock (absolute deadlines, so no drift)."""
    pad = (-samples.size) % FRAME_SAMPLES
    samples = np.concatenate([samples, np.zeros(pad, np.int16)])
    t0 = time.monotonic()
    for k, i in enumerate(range(0, samples.size, FRAME_SAMPLES)):
        delay = t0 + k * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        session.push_audio(samples[i : i + FRAME_SAMPLES])


async def run_session(engine: VoiceEngine, lines: list[str], turns: list[dict]) -> None:
    session = engine.new_session(AGENT, call_id=f"bench-{len(turns)}")
    replies: asyncio.Queue[AgentReply] = asyncio.Queue()

    async def collect() -> None:
        async for ev in session.events():
            if isinstance(ev, AgentReply):
                await replies.put(ev)
            elif isinstance(ev, TurnMetrics):
                turns.append({"turn": ev.turn, **ev.stages_ms})

    collector = asyncio.create_task(collect())
    await session.start()
    await asyncio.wait_for(replies.get(), 30)  # welcome
    silence = np.zeros(16000, np.int16)
    for line in lines:
        caller = engine.tts.synthesize_sync(line)
        await feed_realtime(session, np.concatenate([caller, silence]))
        await asyncio.wait_for(replies.get(), 60)
    await session.hangup()
    await collector


async def main_async(args: argparse.Namespace) -> dict:
    engine = VoiceEngine(EngineSettings())
    t = time.perf_counter()
    await engine.start()
    startup_ms = (time.perf_counter() - t) * 1000

    # STT final alone, 3-5 s utterances.
    stt_ms: list[float] = []
    durations: list[float] = []
    for line in CALLER_LINES:
        audio = engine.tts.synthesize_sync(line)
        durations.append(audio.size / 16000)
        for _ in range(3):
            stt_ms.append(engine.stt.transcribe_sync(audio).compute_ms)

    turns: list[dict] = []
    lines = (CALLER_LINES * 4)[: args.turns]
    per_session = max(1, args.turns // 2)
    for i in range(0, len(lines), per_session):
        await run_session(engine, lines[i : i + per_session], turns)

    stages = ["endpointing_wait", "stt", "llm_first_token", "first_clause", "tts_first_audio"]
    report = {
        "machine": machine(),
        "models": {"stt": engine.stt.name, "tts": engine.tts.name, "llm": "smollm2-135m q4_1"},
        "startup_ms": round(startup_ms),
        "stt_final_alone_ms": summary(stt_ms),
        "utterance_seconds": [round(min(durations), 1), round(max(durations), 1)],
        "response_ms": summary([t["response"] for t in turns if "response" in t]),
        "voice_to_voice_ms": summary([t["voice_to_voice"] for t in turns if "voice_to_voice" in t]),
        "stages_ms": {s: summary([t[s] for t in turns if s in t]) for s in stages},
        "budget_ms": args.budget_ms,
        "turns": turns,
    }
    p50 = report["response_ms"].get("p50", float("inf"))
    report["verdict"] = "PASS" if p50 <= args.budget_ms else "MISS"
    return report


def to_markdown(r: dict) -> str:
    m = r["machine"]
    rows = [
        "| measure | n | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
    ]

    def row(name: str, s: dict) -> None:
        if s:
            rows.append(f"| {name} | {s['n']} | {s['p50']} | {s['p95']} | {s['max']} |")

    row("**response** (end-of-turn decision -> first agent audio)", r["response_ms"])
    row("voice-to-voice (caller's last voiced frame -> first agent audio)", r["voice_to_voice_ms"])
    for stage, s in r["stages_ms"].items():
        row(f"stage: {stage}", s)
    row("STT final alone, 3-5 s utterance", r["stt_final_alone_ms"])
    return (
        f"# Engine latency — {m['date']}\n\n"
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}. "
        f"Models: {r['models']['stt']}, {r['models']['llm']}, {r['models']['tts']}. "
        f"Startup (load + warm-up): {r['startup_ms']} ms.\n\n"
        + "\n".join(rows)
        + f"\n\nVerdict: **{r['verdict']}** (response p50 vs budget {r['budget_ms']} ms).\n"
        "Stages that run speculatively (STT, LLM, TTS) overlap the endpointing wait; "
        "`response` is what the caller waits for after the turn is decided.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--budget-ms", type=float, default=200.0)
    parser.add_argument("--name", default="engine")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    md = to_markdown(report)
    publish(args.name, report, md)


if __name__ == "__main__":
    main()
