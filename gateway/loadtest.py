"""How many simultaneous phone calls this machine holds in real time.

    python -m gateway.loadtest --calls 1 2 3 4 6

For each level N, N simulated callees call the demo agent at once (starts
staggered by 0.3 s, as real calls are) over the real WebSocket protocol, each
saying the same two lines. A level "holds" when, over all turns:

- the agent's response latency (end-of-turn decision -> first agent audio,
  the engine's ``response`` stage) has p95 <= 1000 ms, and
- no caller's playout buffer ran dry mid-utterance for longer than 100 ms
  (an audible gap; shorter late arrivals a carrier's jitter buffer hides).

Caller-side reply latency (end of the caller's line -> first agent audio
received, which includes the 500 ms end-of-turn silence) is reported too.
Not a pass/fail test: machines are noisy; read the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics

from api.app import create_app
from api.server import BackgroundServer
from gateway.agents import DEMO_AGENT, DEMO_AGENT_ID, InMemoryAgentDirectory
from gateway.simulated_callee import CalleeLine, SimulatedCallee, synthesize
from voice_core.config import LLMConfig, Settings

LINES = (
    "Hi, what time do you open on Saturday?",
    "Great, can I book a cleaning for next Tuesday morning?",
)
RESPONSE_P95_BUDGET_MS = 1000.0
# A carrier's jitter buffer (tens of ms) hides shorter late arrivals; longer is a gap.
AUDIBLE_GAP_MS = 100.0


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def run_level(server: BackgroundServer, n: int, lines: list[CalleeLine]) -> dict[str, float]:
    vox = server.app.state.voxline

    async def one(i: int) -> tuple[list[float], list[float], int, int, float, float]:
        await asyncio.sleep(0.3 * i)
        callee = SimulatedCallee(server.media_url, lines, agent_id=DEMO_AGENT_ID)
        report = await callee.run()
        record = await vox.store.wait_final(callee.call_id, 30)
        response = [m["stages_ms"]["response"] for m in record.turn_metrics if m["turn"] > 1]
        caller = [x for x in report.reply_latency_ms if x is not None]
        missing = sum(1 for x in report.reply_latency_ms if x is None)
        return (
            response,
            caller,
            report.underruns,
            missing,
            report.underrun_ms,
            max(report.gaps_ms, default=0.0),
        )

    results = await asyncio.gather(*(one(i) for i in range(n)))
    response = [x for r in results for x in r[0]]
    caller = [x for r in results for x in r[1]]
    underruns = sum(r[2] for r in results)
    missing = sum(r[3] for r in results)
    return {
        "calls": n,
        "turns": len(caller),
        "no_reply": missing,
        "response_p50_ms": statistics.median(response) if response else float("nan"),
        "response_p95_ms": p95(response),
        "caller_reply_p50_ms": statistics.median(caller) if caller else float("nan"),
        "caller_reply_p95_ms": p95(caller),
        "underruns": underruns,
        "underrun_ms": sum(r[4] for r in results),
        "longest_gap_ms": max(r[5] for r in results),
        "holds": float(
            p95(response) <= RESPONSE_P95_BUDGET_MS
            and max(r[5] for r in results) <= AUDIBLE_GAP_MS
            and missing == 0
        ),
    }


async def main_async(levels: list[int]) -> list[dict[str, float]]:
    agents = InMemoryAgentDirectory(default_agent_id=DEMO_AGENT_ID)
    # Replies of a sentence or two, as the prompt asks; the cap keeps a rambling
    # small model from turning each level into minutes.
    agents.add(DEMO_AGENT_ID, DEMO_AGENT.model_copy(update={"llm": LLMConfig(max_tokens=48)}))
    app = create_app(Settings(data_dir="./var/loadtest"), agents=agents)
    server = BackgroundServer(app)
    await server.start()
    tts = app.state.voxline.engine.tts
    lines = [CalleeLine(text, audio=await synthesize(tts, text)) for text in LINES]
    rows = []
    try:
        for n in levels:
            row = await run_level(server, n, lines)
            rows.append(row)
            print(
                f"N={n}: turns {row['turns']}, no reply {row['no_reply']}, "
                f"response p50 {row['response_p50_ms']:.0f} ms "
                f"p95 {row['response_p95_ms']:.0f} ms, "
                f"caller-side reply p50 {row['caller_reply_p50_ms']:.0f} ms "
                f"p95 {row['caller_reply_p95_ms']:.0f} ms, underruns {row['underruns']} "
                f"({row['underrun_ms']:.0f} ms of gaps, longest {row['longest_gap_ms']:.0f} ms) -> "
                f"{'holds' if row['holds'] else 'does NOT hold'} real time",
                flush=True,
            )
    finally:
        await server.stop()
    held = [int(r["calls"]) for r in rows if r["holds"]]
    print(f"verdict: holds up to {max(held) if held else 0} concurrent calls in real time")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(args.calls))


if __name__ == "__main__":
    main()
