"""How many simultaneous phone calls this machine holds within the latency budget,
what each costs in CPU and memory, and whether memory comes back after calls.

    python -m benchmarks.concurrency [--calls 1 2 3 4] [--budget-ms 200]
                                     [--leak-calls 100 --leak-check-at 10 --leak-batch 5]
    python -m benchmarks.concurrency --leak-only [--leak-every 10] [--leak-trace]
                                     [--leak-native]    # -> results/memory.{md,json}

Levels: for each N, N simulated callers call the demo agent at once (starts
staggered by 0.3 s, as real calls arrive) over the real WebSocket phone protocol,
each saying ``--lines-per-call`` short lines at real-time pace. A level is
*within budget* when every line was answered, the response latency (end-of-turn
decision -> first agent audio received by the caller, as in latency.py) has
p95 <= the budget, and no caller's playout buffer ran dry mid-utterance for
longer than 100 ms (an audible gap). It *holds real time* when every line was
answered with no audible gap and a response p95 under 1 s (the looser bar the old
``gateway.loadtest`` used).

Cost per call: process CPU time (user + system, all threads: server, models and
the simulated callers, which are light) over wall time, divided by N; peak RSS
during the level minus RSS before it, divided by N.

Leaks: ``--leak-calls`` short calls (one line, no greeting), ``--leak-batch`` at a
time; RSS after a full GC once ``--leak-check-at`` calls have ended and again
after all of them (and every ``--leak-every`` calls between), plus the CallSession
objects still alive, the calls the gateway still holds, asyncio tasks and threads;
the growth per call is the least-squares slope over those snapshots (two end points
alone are at the mercy of one noisy reading). ``--leak-trace`` diffs tracemalloc
snapshots (Python allocations) against the first; ``--leak-native`` reads glibc's
heap statistics, RSS by mapping kind and RSS after ``malloc_trim(0)`` (freed heap
glibc kept, told apart from memory still held).
Definitions: benchmarks/METHOD.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import logging
import resource
import threading
import time
import tracemalloc
from typing import Any

import numpy as np

from benchmarks.latency import (
    Harness,
    bench_agent,
    caller_lines,
    loadavg,
    replies_text,
    run_call,
    running_server,
)
from benchmarks.stats import machine, publish, summary
from voice_core.session import CallSession

LINES = (
    "Hi, what time do you open on Saturday?",
    "Great, can I book a cleaning for next Tuesday morning?",
    "Do you take new patients?",
)
LEAK_LINE = "What time do you open on Saturday?"
LEAK_AGENT_ID = "bench-short"
STAGGER_S = 0.3
# A carrier's jitter buffer (tens of ms) hides shorter late arrivals; longer is a gap.
AUDIBLE_GAP_MS = 100.0
REAL_TIME_P95_MS = 1000.0


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def sample_peak_rss(stop: asyncio.Event, peak: list[float]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_mb())
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except TimeoutError:
            pass


def level_row(
    n: int, turns: list[dict[str, Any]], gaps: list[float], budget_ms: float
) -> dict[str, Any]:
    """The verdict for one level from its turns and the playout gaps its callers heard."""
    ok = [t for t in turns if "missing" not in t]
    response = summary([t["response"] for t in ok])
    p95 = response.get("p95", float("inf"))
    longest_gap = max(gaps, default=0.0)
    answered = len(ok) == len(turns) and bool(turns)
    no_gap = longest_gap <= AUDIBLE_GAP_MS
    return {
        "calls": n,
        "turns": len(turns),
        "no_reply": len(turns) - len(ok),
        "response_ms": response,
        "voice_to_voice_ms": summary([t["voice_to_voice"] for t in ok]),
        "tts_first_audio_ms": summary(
            [t["server"]["tts_first_audio"] for t in ok if "tts_first_audio" in t["server"]]
        ),
        "audible_gaps": sum(1 for g in gaps if g > AUDIBLE_GAP_MS),
        "longest_gap_ms": round(longest_gap, 1),
        "within_budget": answered and no_gap and p95 <= budget_ms,
        "holds_real_time": answered and no_gap and p95 <= REAL_TIME_P95_MS,
    }


async def run_level(harness: Harness, n: int, lines: list, budget_ms: float) -> dict[str, Any]:
    async def one(i: int) -> tuple[list[dict[str, Any]], list[float]]:
        await asyncio.sleep(STAGGER_S * i)
        turns, report = await run_call(harness, lines)
        return turns, report.gaps_ms

    gc.collect()
    rss_before = rss_mb()
    peak = [rss_before]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_peak_rss(stop, peak))
    cpu0, wall0 = cpu_s(), time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    cpu, wall = cpu_s() - cpu0, time.monotonic() - wall0
    stop.set()
    await sampler
    row = level_row(
        n,
        [t for turns, _ in results for t in turns],
        [g for _, gaps in results for g in gaps],
        budget_ms,
    )
    row.update(
        {
            "wall_s": round(wall, 1),
            "cpu_cores": round(cpu / wall, 2),
            "cpu_cores_per_call": round(cpu / wall / n, 2),
            "rss_before_mb": round(rss_before, 1),
            "rss_peak_mb": round(peak[0], 1),
            "rss_per_call_mb": round((peak[0] - rss_before) / n, 1),
        }
    )
    return row


def live_sessions() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, CallSession))


def malloc_trim() -> None:
    """Give glibc's freed heap back to the OS (what RSS then loses was free, not held)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def malloc_stats() -> dict[str, float] | None:
    """glibc's own account (``malloc_info``), all arenas: address space its heaps hold
    and how much of it is free chunks. Free memory that stays touched counts in RSS
    (fragmentation), though nothing holds it."""
    import re
    import tempfile

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        with tempfile.NamedTemporaryFile(suffix=".xml") as f:
            fp = libc.fopen(f.name.encode(), b"w")
            if not fp:
                return None
            libc.malloc_info(0, fp)
            libc.fclose(fp)
            xml = open(f.name).read()
    except (OSError, AttributeError):
        return None
    tail = xml[xml.rfind("</heap>") :]  # the process-wide totals follow the last heap
    value = {
        f"{m[1]}_{m[2]}": int(m[3])
        for m in re.finditer(r'<(total|system) type="(\w+)"(?: count="\d+")? size="(\d+)"', tail)
    }
    mb = 2**20
    return {
        "arenas": xml.count("<heap nr="),
        "heap_mb": round(value.get("system_current", 0) / mb, 1),
        "heap_free_mb": round((value.get("total_fast", 0) + value.get("total_rest", 0)) / mb, 1),
        "mmapped_mb": round(value.get("total_mmap", 0) / mb, 1),
    }


def rss_by_kind() -> dict[str, float]:
    """RSS by mapping kind (/proc/self/smaps): glibc's main heap, its thread arenas
    (64 MiB-aligned anonymous heaps), other anonymous memory (large mallocs, Python's
    arenas, model buffers: onnxruntime, CTranslate2, llama.cpp's KV cache) and files."""
    import re

    kinds = {"main_heap": 0, "thread_arenas": 0, "other_anon": 0, "files": 0}
    kind = "files"
    arena = 64 * 2**20
    with open("/proc/self/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                name = m[2].strip()
                if name == "[heap]":
                    kind = "main_heap"
                elif not name:
                    kind = "thread_arenas" if int(m[1], 16) % arena == 0 else "other_anon"
                else:
                    kind = "files"
            elif line.startswith("Rss:"):
                kinds[kind] += int(line.split()[1])
    return {k: round(v / 1024, 1) for k, v in kinds.items()}


def slope_mb_per_call(points: list[tuple[int, float]]) -> float | None:
    """Least-squares MB per call over (calls, RSS) points."""
    if len(points) < 2:
        return None
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    return round(float(np.polyfit(x, y, 1)[0]), 3)


def _trace_top(
    base: tracemalloc.Snapshot, now: tracemalloc.Snapshot, limit: int = 15
) -> list[dict[str, Any]]:
    """The allocation sites that grew most since ``base`` (this file's own excluded)."""
    keep = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    diff = now.filter_traces(keep).compare_to(base.filter_traces(keep), "traceback")
    rows = []
    for stat in diff[:limit]:
        frames = [f"{f.filename}:{f.lineno}" for f in stat.traceback]
        rows.append(
            {
                "kb": round(stat.size_diff / 1024, 1),
                "count": stat.count_diff,
                "where": frames[-1] if frames else "?",
                "traceback": frames,
            }
        )
    return rows


async def leak_check(
    harness: Harness,
    total: int,
    check_at: int,
    batch: int,
    *,
    every: int = 0,
    trace: bool = False,
    native: bool = False,
) -> dict[str, Any]:
    line = await caller_lines(harness.engine.tts, [LEAK_LINE])
    marks = {check_at, total}
    if every:
        marks.update(range(check_at + every, total, every))
    done = 0
    snapshots: dict[str, dict[str, Any]] = {}
    no_reply = 0
    started = time.monotonic()
    base: tracemalloc.Snapshot | None = None
    traced: dict[str, list[dict[str, Any]]] = {}
    if trace:
        tracemalloc.start(8)
    while done < total:
        # Never cross a snapshot mark inside a batch: each is read after exactly N calls.
        size = min(batch, total - done, min(m for m in marks if m > done) - done)
        results = await asyncio.gather(
            *(
                run_call(harness, line, agent_id=LEAK_AGENT_ID, wait_for_greeting=False)
                for _ in range(size)
            )
        )
        no_reply += sum(1 for turns, _ in results for t in turns if "missing" in t)
        done += size
        if done in marks:
            # Let the calls' finalization tasks finish, and the engine's heap trim after
            # the hang-ups run (voice_core/memory.py): what an operator's RSS shows.
            await asyncio.sleep(0.5)
            trimmer = harness.engine.heap_trimmer
            for _ in range(300):
                if trimmer is None or not trimmer.pending:
                    break
                await asyncio.sleep(0.1)
            gc.collect()
            snap: dict[str, Any] = {
                "rss_mb": round(rss_mb(), 1),
                "live_call_sessions": live_sessions(),
                "gateway_active_calls": len(harness.phone.active),
                "asyncio_tasks": len(asyncio.all_tasks()),
                "threads": threading.active_count(),
                "elapsed_s": round(time.monotonic() - started, 1),
            }
            if native:
                snap["rss_by_kind"] = rss_by_kind()
                snap["malloc"] = malloc_stats()
                malloc_trim()
                snap["rss_after_trim_mb"] = round(rss_mb(), 1)
            if trace:
                now = tracemalloc.take_snapshot()
                snap["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 2)
                if base is None:
                    base = now
                else:
                    traced[str(done)] = _trace_top(base, now)
            snapshots[str(done)] = snap
            print(f"after {done} calls: {snap}", flush=True)
    if trace:
        tracemalloc.stop()
    first, last = snapshots[str(check_at)], snapshots[str(total)]
    span = total - check_at
    points = [(int(k), v["rss_mb"]) for k, v in snapshots.items()]
    return {
        "calls": total,
        "batch": batch,
        "no_reply": no_reply,
        "wall_s": round(time.monotonic() - started, 1),
        "after": snapshots,
        "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
        "rss_growth_pct": round(100 * (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"], 1),
        "rss_growth_kb_per_call": round((last["rss_mb"] - first["rss_mb"]) * 1024 / span, 1)
        if span
        else None,
        "rss_slope_mb_per_call": slope_mb_per_call(points),
        "rss_after_trim_slope_mb_per_call": slope_mb_per_call(
            [(int(k), v["rss_after_trim_mb"]) for k, v in snapshots.items()]
        )
        if native
        else None,
        "trace_top": traced,
    }


def summarize(levels: list[dict[str, Any]], budget_ms: float) -> dict[str, Any]:
    within = [r["calls"] for r in levels if r["within_budget"]]
    real_time = [r["calls"] for r in levels if r["holds_real_time"]]
    return {
        "budget_ms": budget_ms,
        # The largest N such that every level up to it held (a level that holds after
        # one that did not is luck, not capacity).
        "max_calls_within_budget": _prefix_max(levels, "within_budget"),
        "max_calls_real_time": _prefix_max(levels, "holds_real_time"),
        "levels_within_budget": within,
        "levels_real_time": real_time,
        "cpu_cores_per_call_at_1": next(
            (r["cpu_cores_per_call"] for r in levels if r["calls"] == 1), None
        ),
        "rss_per_call_mb_median": round(float(np.median([r["rss_per_call_mb"] for r in levels])), 1)
        if levels
        else None,
    }


def _prefix_max(levels: list[dict[str, Any]], key: str) -> int:
    best = 0
    for r in sorted(levels, key=lambda r: r["calls"]):
        if not r[key]:
            break
        best = r["calls"]
    return best


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def to_markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    s = r["summary"]
    machine_line = (
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average "
        f"(1 min) {r['load_before'][:1]} before, {r['load_after'][:1]} after."
    )
    if not r["levels"]:  # --leak-only: the leak calls' own reply length
        config = {**r["config"], "max_tokens": r["config"]["leak_max_tokens"]}
        text = (
            f"# Memory over sequential calls — {m['date']}\n\n{machine_line} "
            f"Configuration: {replies_text(config)}"
            f", embedded models. Run time {r['wall_s']:.0f} s.\n"
        )
        return text + leak_markdown(r["leak"]) if r.get("leak") else text
    rows = [
        "| calls | turns | no reply | response p50 / p95 / max ms | voice-to-voice p50 / p95 ms "
        "| TTS first audio p95 ms | audible gaps (longest ms) | CPU cores (per call) "
        "| RSS peak MB (per call) | within budget | real time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["levels"]:
        resp, v2v, tts = x["response_ms"], x["voice_to_voice_ms"], x["tts_first_audio_ms"]
        rows.append(
            f"| {x['calls']} | {x['turns']} | {x['no_reply']} "
            f"| {resp.get('p50', '-')} / {resp.get('p95', '-')} / {resp.get('max', '-')} "
            f"| {v2v.get('p50', '-')} / {v2v.get('p95', '-')} | {tts.get('p95', '-')} "
            f"| {x['audible_gaps']} ({x['longest_gap_ms']}) "
            f"| {x['cpu_cores']} ({x['cpu_cores_per_call']}) "
            f"| {x['rss_peak_mb']} (+{x['rss_per_call_mb']}) "
            f"| {_yes(x['within_budget'])} | {_yes(x['holds_real_time'])} |"
        )
    text = (
        f"# Concurrent calls — {m['date']}\n\n"
        f"{machine_line} Each caller "
        f"says {r['config']['lines_per_call']} short lines over the phone protocol "
        f"({replies_text(r['config'])}). Run time {r['wall_s']:.0f} s."
        "\n\n" + "\n".join(rows) + "\n\n"
        f"Verdict: this machine sustains **{s['max_calls_within_budget']} simultaneous "
        f"call(s)** with response p95 within the {s['budget_ms']:.0f} ms budget, and holds "
        f"real time (every line answered, no audible gap, response p95 under "
        f"{REAL_TIME_P95_MS:.0f} ms) up to **{s['max_calls_real_time']}** calls.\n"
    )
    leak = r.get("leak")
    if leak:
        text += leak_markdown(leak)
    return text


def _heaps(m: dict[str, float] | None) -> str:
    return f"{m['heap_mb']} ({m['heap_free_mb']})" if m else "-"


def leak_markdown(leak: dict[str, Any]) -> str:
    snaps = leak["after"]
    trim = any("rss_after_trim_mb" in v for v in snaps.values())
    lines = [
        "| after calls | RSS MB |"
        + (" glibc heaps MB (free in them) | RSS after malloc_trim MB |" if trim else "")
        + " CallSessions alive | gateway calls held | asyncio tasks | threads |",
        "|---|---|" + ("---|---|" if trim else "") + "---|---|---|---|",
    ]
    for k in sorted(snaps, key=int):
        v = snaps[k]
        lines.append(
            f"| {k} | {v['rss_mb']} |"
            + (f" {_heaps(v.get('malloc'))} | {v.get('rss_after_trim_mb')} |" if trim else "")
            + f" {v['live_call_sessions']} | {v['gateway_active_calls']} "
            f"| {v['asyncio_tasks']} | {v.get('threads', '-')} |"
        )
    first = min(snaps, key=int)
    verdict = "within" if abs(leak.get("rss_growth_pct", 100.0)) <= 5 else "NOT within"
    text = (
        f"\n## Memory over sequential calls\n\n{leak['calls']} short calls "
        f"({leak['batch']} at a time, {leak['no_reply']} unanswered lines, "
        f"{leak['wall_s']:.0f} s); RSS after a full GC:\n\n" + "\n".join(lines) + "\n\n"
        f"Growth: {leak['rss_growth_mb']} MB ({leak['rss_growth_kb_per_call']} KB per call) "
        f"between the first and the last snapshot; least-squares slope "
        f"{leak.get('rss_slope_mb_per_call')} MB per call"
        + (
            f" ({leak.get('rss_after_trim_slope_mb_per_call')} MB per call after malloc_trim)"
            if trim
            else ""
        )
        + f". RSS after call {leak['calls']} is {leak.get('rss_growth_pct')} % over call "
        f"{first}: {verdict} the 5 % goal.\n"
    )
    for at, rows in (leak.get("trace_top") or {}).items():
        text += f"\nTop Python allocation growth, call {first} -> {at} (tracemalloc):\n\n"
        text += "\n".join(f"- {x['kb']} KB ({x['count']:+d} blocks) {x['where']}" for x in rows)
        text += "\n"
    return text


def save(report: dict[str, Any], name: str) -> None:
    md = to_markdown(report)
    publish(name, report, md)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    agent = bench_agent(args.max_tokens)
    short = bench_agent(args.leak_max_tokens, welcome=False)
    load_before = loadavg()
    started = time.monotonic()
    levels: list[dict[str, Any]] = []
    leak = None
    async with running_server(
        agent, analysis=not args.no_analysis, **{LEAK_AGENT_ID: short}
    ) as harness:
        lines = await caller_lines(harness.engine.tts, list(LINES[: args.lines_per_call]))
        for n in [] if args.leak_only else args.calls:
            row = await run_level(harness, n, lines, args.budget_ms)
            levels.append(row)
            resp = row["response_ms"]
            print(
                f"N={n}: turns {row['turns']}, no reply {row['no_reply']}, response p50 "
                f"{resp.get('p50')} p95 {resp.get('p95')} ms, gaps {row['audible_gaps']} "
                f"(longest {row['longest_gap_ms']} ms), CPU {row['cpu_cores']} cores, "
                f"RSS +{row['rss_per_call_mb']} MB/call -> "
                f"{'within budget' if row['within_budget'] else 'over budget'}, "
                f"{'holds' if row['holds_real_time'] else 'does NOT hold'} real time",
                flush=True,
            )
        if args.leak_calls:
            # The levels are saved first: a leak check cut short still leaves them.
            save(report(args, load_before, started, levels, None), args.name)
            leak = await leak_check(
                harness,
                args.leak_calls,
                min(args.leak_check_at, args.leak_calls),
                args.leak_batch,
                every=args.leak_every,
                trace=args.leak_trace,
                native=args.leak_native,
            )
            print(f"leak check: {leak}", flush=True)
    return report(args, load_before, started, levels, leak)


def report(
    args: argparse.Namespace,
    load_before: list[float],
    started: float,
    levels: list[dict[str, Any]],
    leak: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "machine": machine(),
        "load_before": load_before,
        "load_after": loadavg(),
        "wall_s": round(time.monotonic() - started, 1),
        "config": {
            "lines_per_call": args.lines_per_call,
            "max_tokens": args.max_tokens,
            "leak_max_tokens": args.leak_max_tokens,
            "analysis": not args.no_analysis,
            "stagger_s": STAGGER_S,
            "audible_gap_ms": AUDIBLE_GAP_MS,
        },
        "levels": levels,
        "summary": summarize(levels, args.budget_ms),
        "leak": leak,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--budget-ms", type=float, default=200.0, help="response p95 budget")
    p.add_argument("--lines-per-call", type=int, default=3, choices=range(1, len(LINES) + 1))
    p.add_argument(
        "--max-tokens", type=int, default=None, help="cap replies (default: the agent's default)"
    )
    p.add_argument(
        "--no-analysis", action="store_true", help="post-call analysis off (default: on)"
    )
    p.add_argument("--leak-calls", type=int, default=100, help="0 skips the leak check")
    p.add_argument("--leak-check-at", type=int, default=10)
    p.add_argument("--leak-batch", type=int, default=5)
    p.add_argument("--leak-max-tokens", type=int, default=None, help="cap the leak calls' replies")
    p.add_argument(
        "--leak-only", action="store_true", help="skip the levels (results name: memory)"
    )
    p.add_argument("--leak-every", type=int, default=10, help="snapshot every N calls too")
    p.add_argument("--leak-trace", action="store_true", help="tracemalloc diffs (slower)")
    p.add_argument(
        "--leak-native",
        action="store_true",
        help="glibc heap stats, RSS by mapping kind, RSS after malloc_trim(0)",
    )
    p.add_argument("--name", default=None, help="results file name (concurrency / memory)")
    args = p.parse_args(argv)
    if args.name is None:
        args.name = "memory" if args.leak_only else "concurrency"
    save(asyncio.run(main_async(args)), args.name)


if __name__ == "__main__":
    main()
