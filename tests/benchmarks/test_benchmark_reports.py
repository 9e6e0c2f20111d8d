"""The benchmark report builders, from canned inputs (no models, no servers, no clocks)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from benchmarks import concurrency, latency
from gateway.simulated.callee import CalleeReport, SaidLine


def turn(response: float, tts_after: float) -> dict:
    share = {"stt": 0.0, "llm_first_token": 0.0, "first_clause": 0.0}
    share.update({"tts_first_audio": tts_after, "playout": 1.0})
    share["transport"] = round(response - tts_after - 1.0, 1)
    return {
        "response": response,
        "voice_to_voice": response + 560,
        "inbound": 60.0,
        "server": {"endpointing_wait": 500.0, "tts_first_audio": 250.0, "response": response},
        "budget_share": share,
    }


def test_trim_finds_the_last_voiced_window() -> None:
    t = np.arange(16000) / 16000
    speech = (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    audio = np.concatenate([speech, np.zeros(8000, np.int16)])
    assert latency.trim_trailing_silence(audio).size == speech.size
    assert latency.frame_padding_s(speech[:330]) == 0.02 * 2 - 330 / 16000


def test_budget_shares_sum_to_the_response() -> None:
    marks = {
        "speech_end": 10.0,
        "stt_final": 10.25,
        "llm_first_token": 10.35,
        "first_clause": 10.45,
        "endpoint": 10.5,
        "tts_first_audio": 10.7,
        "first_audio_out": 10.702,
        "first_rx": 10.703,
    }
    share = latency.budget_share(marks)
    assert share["stt"] == share["llm_first_token"] == share["first_clause"] == 0.0
    assert share["tts_first_audio"] == 200.0
    assert abs(sum(share.values()) - 203.0) < 0.01


def test_turns_are_matched_on_one_clock() -> None:
    line = np.ones(16000, np.int16) * 1000  # 1 s of "speech", exactly 50 frames
    report = CalleeReport(
        "call_x",
        said=[SaidLine("hello", started_at=1.0, ended_at=2.0)],
        media_times=[0.5, 2.8, 2.82],
    )
    metrics = SimpleNamespace(
        turn=2,
        marks={"speech_end": 102.05, "endpoint": 102.55, "first_audio_out": 102.79},
        stages_ms={"endpointing_wait": 500.0, "response": 240.0},
    )
    rows = latency.turns_of_call(report, 100.0, SimpleNamespace(turn_metrics=[metrics]), [line])
    assert rows[0]["voice_to_voice"] == 800.0
    assert rows[0]["response"] == 250.0
    assert rows[0]["inbound"] == 50.0


def test_latency_report_names_the_stage_that_eats_the_budget() -> None:
    turns = [turn(150, 120), turn(180, 150), turn(320, 290), turn(400, 370)]
    turns.append({"call_id": "c", "line": 4, "text": "x", "missing": "no reply"})
    s = latency.summarize(turns, 200.0)
    assert s["verdict"] == "MISS"
    assert s["turns_measured"] == 4 and s["turns_missing"] == 1 and s["turns_over_budget"] == 2
    assert s["eaten_by"] == "tts_first_audio"
    assert s["response_ms"]["n"] == 4
    report = {
        "machine": {"cpu": "cpu", "cores": 2, "python": "3.11", "date": "2026-01-01"},
        "load_before": [0.2, 0.3, 0.4],
        "load_after": [0.5, 0.4, 0.4],
        "models": "m",
        "calls": 1,
        "wall_s": 10.0,
        "config": {
            "lines_per_call": 5,
            "end_of_turn_silence_ms": 500,
            "speculative_silence_ms": 160,
            "playout_lead_ms": 120,
            "max_tokens": 24,
        },
        "summary": s,
    }
    md = latency.to_markdown(report)
    assert "| **response**" in md and "**MISS**" in md and "**tts_first_audio** eats it" in md


def test_latency_passes_within_budget() -> None:
    s = latency.summarize([turn(100, 60), turn(120, 80)], 200.0)
    assert s["verdict"] == "PASS" and "eaten_by" not in s


def test_concurrency_report() -> None:
    good = [turn(120, 90)] * 3
    bad = [turn(900, 860)] * 6
    levels = [
        concurrency.level_row(1, good, [0.5], 200.0),
        concurrency.level_row(2, bad, [150.0], 200.0),
    ]
    assert levels[0]["within_budget"] and levels[0]["holds_real_time"]
    assert not levels[1]["within_budget"] and not levels[1]["holds_real_time"]
    for row in levels:
        row.update(
            wall_s=10.0,
            cpu_cores=0.5,
            cpu_cores_per_call=0.5,
            rss_peak_mb=900.0,
            rss_before_mb=880.0,
            rss_per_call_mb=20.0,
        )
    s = concurrency.summarize(levels, 200.0)
    assert s["max_calls_within_budget"] == 1 and s["max_calls_real_time"] == 1
    snapshot = {"rss_mb": 900.0, "live_call_sessions": 0, "gateway_active_calls": 0}
    report = {
        "machine": {"cpu": "cpu", "cores": 2, "python": "3.11", "date": "2026-01-01"},
        "load_before": [0.2],
        "load_after": [0.3],
        "wall_s": 60.0,
        "config": {"lines_per_call": 3, "max_tokens": 24},
        "levels": levels,
        "summary": s,
        "leak": {
            "calls": 100,
            "batch": 5,
            "no_reply": 0,
            "wall_s": 100.0,
            "after": {
                "10": {**snapshot, "asyncio_tasks": 9},
                "100": {**snapshot, "asyncio_tasks": 9},
            },
            "rss_growth_mb": 0.0,
            "rss_growth_kb_per_call": 0.0,
        },
    }
    md = concurrency.to_markdown(report)
    assert "sustains **1 simultaneous call(s)**" in md
    assert "| 100 | 900.0 | 0 | 0 | 9 |" in md
