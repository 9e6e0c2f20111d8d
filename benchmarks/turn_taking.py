"""End of turn on real human speech: how often a whole turn is cut at a natural pause,
and how long the caller waits after really finishing.

Speech: Allison Smith's Asterisk prompts (each a whole turn, many with pauses inside)
and the turns of pyannote-audio's two-speaker phone conversation, sent through the
phone path (8 kHz mu-law, back to 16 kHz). Never synthesized voices.

Each turn, followed by 2 s of silence, goes frame by frame through the engine's own
VAD and ``Endpointer``. At every speculative pause the end-of-turn policy is asked
(``--mode model``: Smart Turn on the audio so far, as the session does) and its
verdict applied, as late as the model's measured decision time. A ``TurnEnded``
before the turn's last voiced frame is a cut-off; after it, the silence waited is
the endpointing share of voice-to-voice latency. The words are not used here (no
partial transcripts run): what is measured is the acoustic model and the silence.

    python -m benchmarks.turn_taking            # both modes, writes results/turn_taking.md
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.stt_accuracy import Clip, asterisk_prompts, conversation_turns, phone_path
from voice_core.audio.frames import FRAME_MS, FRAME_SAMPLES
from voice_core.config import EndpointingConfig
from voice_core.endpointing import Endpointer, SpeechPaused, SpeechStarted, TurnEnded
from voice_core.turn_detection.policy import decide
from voice_core.vad import WebRtcVad

RESULTS = Path(__file__).parent / "results"


@dataclass
class Outcome:
    clip: str
    cut_at_s: float | None  # where the turn was cut early (None: not cut)
    cut_probability: float | None
    wait_ms: float | None  # silence after the last voiced frame until the end of turn
    decisions: int


def turns() -> list[Clip]:
    prompts = [c for c in asterisk_prompts() if len(c.text.split()) >= 3]
    return prompts + conversation_turns()


def run_turn(clip: Clip, cfg: EndpointingConfig, model, decision_ms: list[float]) -> Outcome:
    audio = phone_path(clip.audio, clip.rate)
    audio = np.concatenate([audio, np.zeros(2 * 16000, np.int16)])
    audio = audio[: audio.size - audio.size % FRAME_SAMPLES]
    frames = audio.reshape(-1, FRAME_SAMPLES)
    vad, ep = WebRtcVad(cfg.vad_aggressiveness), Endpointer(cfg)
    voiced = [vad.is_speech(f) for f in frames]
    last_voiced = max((i for i, v in enumerate(voiced) if v), default=0)
    start = 0
    pending: list[tuple[int, int, int, str]] = []  # (apply at frame, pause, silence ms, why)
    probability: dict[int, float | None] = {}
    decisions = 0
    for i, v in enumerate(voiced):
        for _at, pause, ms, why in [p for p in pending if p[0] <= i]:
            ep.adapt(pause, ms, why)
        pending = [p for p in pending if p[0] > i]
        for ev in ep.push(v):
            if isinstance(ev, SpeechStarted):
                start = ev.frame
            elif isinstance(ev, SpeechPaused) and cfg.mode == "model":
                t = time.perf_counter()
                p = model.probability(frames[start : i + 1].reshape(-1))
                ms = (time.perf_counter() - t) * 1000
                decision_ms.append(ms)
                decisions += 1
                verdict = decide(cfg, p, "")
                probability[ep.pause_no] = p
                delay = int(np.ceil(ms / FRAME_MS))
                pending.append((i + delay, ep.pause_no, verdict.silence_ms, verdict.why))
            elif isinstance(ev, TurnEnded):
                if ev.last_voiced_frame < last_voiced:
                    return Outcome(
                        clip.name,
                        ev.last_voiced_frame * FRAME_MS / 1000,
                        probability.get(ep.pause_no),
                        None,
                        decisions,
                    )
                wait = (ev.frame - ev.last_voiced_frame) * FRAME_MS
                return Outcome(clip.name, None, None, float(wait), decisions)
    return Outcome(clip.name, None, None, None, decisions)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def measure(mode: str, clips: list[Clip], model, **overrides: float) -> dict:
    cfg = EndpointingConfig(mode=mode, **overrides)  # type: ignore[arg-type]
    decision_ms: list[float] = []
    outcomes = [run_turn(c, cfg, model, decision_ms) for c in clips]
    cuts = [o for o in outcomes if o.cut_at_s is not None]
    waits = [o.wait_ms for o in outcomes if o.wait_ms is not None]
    return {
        "mode": mode + "".join(f", {k}={v:g}" for k, v in overrides.items()),
        "turns": len(outcomes),
        "cut": len(cuts),
        "cut_pct": 100 * len(cuts) / len(outcomes),
        "cuts": [(o.clip, o.cut_at_s, o.cut_probability) for o in cuts],
        "wait_ms": {"p50": pct(waits, 50), "p95": pct(waits, 95), "max": max(waits, default=0)},
        "decision_ms": {
            "p50": pct(decision_ms, 50),
            "p95": pct(decision_ms, 95),
            "max": max(decision_ms, default=0),
            "count": len(decision_ms),
        },
    }


def report(results: list[dict]) -> str:
    lines = [
        f"# End of turn on real phone speech — {time.strftime('%Y-%m-%d')}",
        "",
        "Method: module docstring of `benchmarks/turn_taking.py` (acoustic model and silence;",
        "the words are not used). Defaults of `EndpointingConfig` for each mode.",
        "",
        "| mode | turns | cut early | endpointing wait p50 / p95 / max ms "
        "| model ms per decision p50 / p95 / max |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        w, d = r["wait_ms"], r["decision_ms"]
        dec = f"{d['p50']:.0f} / {d['p95']:.0f} / {d['max']:.0f}" if d["count"] else "-"
        lines.append(
            f"| {r['mode']} | {r['turns']} | {r['cut']} ({r['cut_pct']:.1f} %) "
            f"| {w['p50']:.0f} / {w['p95']:.0f} / {w['max']:.0f} | {dec} |"
        )
    for r in results:
        if r["cuts"]:
            lines += ["", f"Cut early in {r['mode']} mode (clip, at s, model probability):", ""]
            for clip, at, p in r["cuts"]:
                lines.append(f"- {clip} at {at:.2f} s" + (f" (p={p:.2f})" if p is not None else ""))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="silence,model")
    parser.add_argument(
        "--sweep", action="store_true", help="also model mode over complete_silence_ms x threshold"
    )
    args = parser.parse_args()
    from voice_core.turn_detection.smart_turn import SmartTurn

    clips = turns()
    model = SmartTurn()
    results = [measure(m, clips, model) for m in args.modes.split(",")]
    if args.sweep:
        for ms in (200, 300, 400):
            for threshold in (0.5, 0.8, 0.95):
                results.append(
                    measure(
                        "model", clips, model, complete_silence_ms=ms, complete_threshold=threshold
                    )
                )
    RESULTS.mkdir(exist_ok=True)
    name = "turn_taking.sweep" if args.sweep else "turn_taking"
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=1))
    text = report(results)
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
