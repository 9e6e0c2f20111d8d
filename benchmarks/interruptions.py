"""Speech over the agent: do backchannels and noises leave it talking, do real
interruptions stop it, and how fast?

Each trial is one ``CallSession`` with the real ear (webrtcvad, Whisper tiny.en through
the engine's own ``WhisperSTT``) and the real voice (Piper joe, cached per line: the
TTS is not under test). The agent says a long welcome; 1 s into it the caller's line
carries one clip, through the phone path (8 kHz mu-law -> 16 kHz), at real time, then
silence. The LLM is a stub (one short line): nothing measured here waits on it.

Clips:
- backchannels: Allison Smith's recorded "Thank you." (asterisk-core-sounds-en-wav),
  the pyannote conversation's "Oh," and "Okay," (cut at their word gaps), and Piper
  saying ten acknowledgements ("uh-huh", "yeah", "okay", "right", "mm-hmm", ...) at
  three speaking rates (synthesized: the packages ship no other recorded ones);
- noises: cough-like bursts, door knocks, a hummed "hmm" (generated, fixed seeds);
- interruptions: whole sentences from the same real recordings (Asterisk prompts of
  5+ words, conversation turns of 4+ words).

Measured per trial from the session's own record (``CallSession.overlaps``): whether
the agent paused, resumed or was interrupted, and the stop delay = the pause (the
ClearAudio to the transport) minus the moment the clip's first speech frame was pushed
(first 20 ms frame above 10 % of the clip's loudest frame).

    python -m benchmarks.interruptions            # writes results/interruptions.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.stt_accuracy import asterisk_prompts, conversation_turns, phone_path
from voice_core.audio.frames import FRAME_SAMPLES
from voice_core.audio.resample import resample
from voice_core.config import AgentConfig, EndCallConfig, LLMConfig
from voice_core.events import AgentAudio
from voice_core.llm.base import TextDelta
from voice_core.session import CallSession

RESULTS = Path(__file__).parent / "results"
WELCOME = (
    "Hello, and thank you for calling Bright Smile Dental. Our clinic is open from eight in "
    "the morning until six in the evening, Monday to Friday, and on Saturday mornings from "
    "nine until one. We offer cleanings, fillings, whitening and emergency appointments, "
    "and most insurance plans are accepted. How can I help you today?"
)
BACKCHANNEL_WORDS = [
    "Uh-huh.", "Yeah.", "Okay.", "Right.", "Mm-hmm.", "Yes.", "Sure.", "Got it.", "I see.",
    "Alright.",
]  # fmt: skip
RATES = (0.8, 1.0, 1.3)  # Piper length_scale: quick, plain, drawn out


@dataclass
class Clip:
    name: str
    kind: str  # backchannel | noise | interruption
    source: str  # real | piper | generated
    audio: np.ndarray  # int16 16 kHz, phone path applied


@dataclass
class Trial:
    name: str
    kind: str
    source: str
    outcome: str  # interrupted | resumed | ignored | none
    why: str
    stop_ms: float | None
    paused_ms: float | None  # how long the agent stayed silent before it went on


class CachedTTS:
    def __init__(self, tts: Any) -> None:
        self._tts, self._cache = tts, {}

    async def synthesize(self, text: str, *, length_scale: float = 1.0) -> AsyncIterator:
        if text not in self._cache:
            self._cache[text] = await asyncio.to_thread(self._tts.synthesize_sync, text)
        yield self._cache[text]


class StubLLM:
    async def stream(self, messages, tools=None, **kw) -> AsyncIterator:
        yield TextDelta("Of course, go ahead.")


def _voiced_runs(audio: np.ndarray, gap_frames: int = 5) -> list[tuple[int, int]]:
    """(start, end) sample spans of speech separated by >= gap_frames quiet frames."""
    n = audio.size // FRAME_SAMPLES
    rms = np.sqrt(np.mean(audio[: n * FRAME_SAMPLES].reshape(n, -1).astype(float) ** 2, axis=1))
    loud = rms > 0.1 * rms.max()
    runs, start, quiet = [], None, 0
    for i, v in enumerate(loud):
        if v:
            start = i if start is None else start
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= gap_frames:
                runs.append((start * FRAME_SAMPLES, (i - quiet + 1) * FRAME_SAMPLES))
                start, quiet = None, 0
    if start is not None:
        runs.append((start * FRAME_SAMPLES, n * FRAME_SAMPLES))
    return runs


def onset_sample(audio: np.ndarray) -> int:
    runs = _voiced_runs(audio)
    return runs[0][0] if runs else 0


def generated_noises() -> list[Clip]:
    rng = np.random.default_rng(7)
    clips = []
    for k in range(2):
        # A cough: a burst of broadband noise, fast attack, ~250 ms decay.
        n = int(16000 * (0.25 + 0.1 * k))
        env = np.exp(-np.arange(n) / (16000 * 0.08)) * np.minimum(1, np.arange(n) / 160)
        cough = rng.normal(0, 9000, n) * env
        clips.append(Clip(f"cough-{k}", "noise", "generated", _pad(cough)))
        # A door: two or three knocks, each a 30 ms click of low-passed noise.
        knocks = np.zeros(int(16000 * 0.6))
        for j in range(2 + k):
            at = int(16000 * 0.18 * j)
            m = 480
            knocks[at : at + m] += rng.normal(0, 14000, m) * np.exp(-np.arange(m) / 80)
        clips.append(Clip(f"door-{k}", "noise", "generated", _pad(np.convolve(knocks, [0.5] * 4))))
        # A hummed "hmm": a 120-140 Hz voice-like buzz with harmonics, 400-600 ms.
        n = int(16000 * (0.4 + 0.2 * k))
        t = np.arange(n) / 16000
        f0 = 120 + 20 * k
        hum = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8))
        hum *= 5000 * np.minimum(1, np.minimum(t, t[::-1]) / 0.05)
        clips.append(Clip(f"hum-{k}", "noise", "generated", _pad(hum)))
    return [Clip(c.name, c.kind, c.source, phone_path(c.audio, 16000)) for c in clips]


def _pad(x: np.ndarray) -> np.ndarray:
    return np.clip(np.concatenate([np.zeros(1600), x, np.zeros(1600)]), -32768, 32767).astype(
        np.int16
    )


def real_clips(n_interruptions: int) -> list[Clip]:
    clips: list[Clip] = []
    prompts = {c.name: c for c in asterisk_prompts()}
    for name in ("auth-thankyou", "privacy-thankyou"):
        c = prompts[name]
        clips.append(Clip(f"asterisk/{name}", "backchannel", "real", phone_path(c.audio, c.rate)))
    turns = conversation_turns()
    # "Oh, hello." / "Okay, then ...": the first word alone (its length, read by ear).
    for clip, word, seconds in ((turns[2], "oh", 0.3), (turns[5], "okay", 0.42)):
        audio = phone_path(clip.audio, clip.rate)
        start = onset_sample(audio)
        cut = np.concatenate([audio[max(0, start - 1600) : start + int(seconds * 16000)]])
        fade = np.linspace(1, 0, 320)
        cut[-320:] = (cut[-320:] * fade).astype(np.int16)
        clips.append(Clip(f"conversation/{word}", "backchannel", "real", cut))
    sentences = [c for c in prompts.values() if len(c.text.split()) >= 5 and c.seconds < 5]
    sentences.sort(key=lambda c: c.name)
    step = max(1, len(sentences) // max(1, n_interruptions - 6))
    for c in sentences[::step][: n_interruptions - 6]:
        clips.append(
            Clip(f"asterisk/{c.name}", "interruption", "real", phone_path(c.audio, c.rate))
        )
    for c in [t for t in turns if len(t.text.split()) >= 4][:6]:
        clips.append(
            Clip(f"conversation/{c.name}", "interruption", "real", phone_path(c.audio, c.rate))
        )
    return clips


def piper_backchannels(tts: Any) -> list[Clip]:
    clips = []
    for text in BACKCHANNEL_WORDS:
        for rate in RATES:
            audio = tts.synthesize_sync(text, length_scale=rate)
            audio = resample(audio, 16000, 8000)  # Piper's 22 kHz voice on the phone line
            clips.append(
                Clip(f"piper/{text}@{rate}", "backchannel", "piper", phone_path(audio, 8000))
            )
    return clips


async def run_trial(clip: Clip, stt: Any, tts: CachedTTS) -> Trial:
    agent = AgentConfig(
        welcome_message=WELCOME,
        llm=LLMConfig(prewarm=False),
        end_call=EndCallConfig(silence_timeout_s=60, max_duration_s=120),
    )
    session = CallSession(agent, stt=stt, llm=StubLLM(), tts=tts, call_id=clip.name)
    first_audio = asyncio.Event()

    async def pump() -> None:
        async for ev in session.events():
            if isinstance(ev, AgentAudio):
                first_audio.set()

    reader = asyncio.create_task(pump())
    await session.start()
    await asyncio.wait_for(first_audio.wait(), 30)
    onset = onset_sample(clip.audio)
    audio = np.concatenate(
        [np.zeros(16000, np.int16), clip.audio, np.zeros(int(16000 * 2.5), np.int16)]
    )
    onset += 16000
    audio = audio[: audio.size - audio.size % FRAME_SAMPLES]
    onset_t = None
    t0 = time.monotonic()
    for i in range(audio.size // FRAME_SAMPLES):
        # Real time: frame i is due at t0 + i * 20 ms.
        delay = t0 + i * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if onset_t is None and (i + 1) * FRAME_SAMPLES > onset:
            onset_t = time.monotonic()
        session.push_audio(audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
    overlaps = list(session.overlaps)
    await session.hangup()
    reader.cancel()
    interrupted = next((o for o in overlaps if o.outcome == "interrupted"), None)
    paused = next((o for o in overlaps if o.paused_t is not None), None)
    final = interrupted or (overlaps[-1] if overlaps else None)
    stop_ms = (paused.paused_t - onset_t) * 1000 if paused and onset_t else None
    paused_ms = None
    if not interrupted and paused and paused.decided_t:
        paused_ms = (paused.decided_t - paused.paused_t) * 1000
    return Trial(
        clip.name,
        clip.kind,
        clip.source,
        final.outcome if final else "none",
        final.why if final else "",
        stop_ms,
        paused_ms,
    )


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def summarize(trials: list[Trial]) -> dict:
    out: dict[str, Any] = {}
    for kind in ("backchannel", "noise", "interruption"):
        ts = [t for t in trials if t.kind == kind]
        if not ts:
            continue
        kept = [t for t in ts if t.outcome != "interrupted"]
        stops = [t.stop_ms for t in ts if t.stop_ms is not None]
        gaps = [t.paused_ms for t in ts if t.paused_ms is not None]
        out[kind] = {
            "n": len(ts),
            "not_interrupted": len(kept),
            "not_interrupted_pct": 100 * len(kept) / len(ts),
            "paused": len(stops),
            "stop_ms": {"p50": pct(stops, 50), "p95": pct(stops, 95), "max": max(stops, default=0)},
            "silent_ms_before_resume": {"p50": pct(gaps, 50), "p95": pct(gaps, 95)},
        }
    return out


def report(trials: list[Trial], summary: dict, load: tuple[float, ...]) -> str:
    lines = [
        f"# Speech over the agent — {time.strftime('%Y-%m-%d')}",
        "",
        "Method: module docstring of `benchmarks/interruptions.py` and METHOD.md; shipped",
        f"`EndpointingConfig` defaults; 2 shared cores, load average {load[0]:.1f} at the end.",
        "",
        "| set | clips | not interrupted | paused at all | stop delay p50 / p95 / max ms "
        "| agent silent before resuming p50 / p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    for kind, s in summary.items():
        st, g = s["stop_ms"], s["silent_ms_before_resume"]
        lines.append(
            f"| {kind} | {s['n']} | {s['not_interrupted']} ({s['not_interrupted_pct']:.0f} %) "
            f"| {s['paused']} | {st['p50']:.0f} / {st['p95']:.0f} / {st['max']:.0f} "
            f"| {g['p50']:.0f} / {g['p95']:.0f} |"
        )
    bc = [s for k, s in summary.items() if k != "interruption"]
    if bc and "interruption" in summary:
        kept = sum(s["not_interrupted"] for s in bc) / sum(s["n"] for s in bc) * 100
        i = summary["interruption"]
        stopped = 100 * (i["n"] - i["not_interrupted"]) / i["n"]
        lines += [
            "",
            f"Verdict: backchannels and noises not interrupting {kept:.0f} % (goal >= 90 %); "
            f"real interruptions stopped {stopped:.0f} % (goal >= 95 %); stop delay p95 "
            f"{i['stop_ms']['p95']:.0f} ms (goal 250 ms).",
        ]
    lines += [
        "",
        "| clip | set | outcome | why | stop ms | silent ms |",
        "|---|---|---|---|---|---|",
    ]
    for t in trials:
        stop = f"{t.stop_ms:.0f}" if t.stop_ms is not None else "-"
        gap = f"{t.paused_ms:.0f}" if t.paused_ms is not None else "-"
        why = t.why.replace("|", "/")
        lines.append(f"| {t.name} | {t.kind} | {t.outcome} | {why} | {stop} | {gap} |")
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> None:
    import os

    from voice_core.stt.whisper import WhisperSTT
    from voice_core.tts.piper import PiperTTS

    stt = WhisperSTT(cpu_threads=2)
    piper = PiperTTS(threads=1)
    clips = real_clips(args.interruptions) + generated_noises()
    if not args.no_piper:
        clips += piper_backchannels(piper)
    if args.only:
        clips = [c for c in clips if args.only in c.name]
    tts = CachedTTS(piper)
    trials = []
    for clip in clips:
        trial = await run_trial(clip, stt, tts)
        print(f"{trial.name:45s} {trial.outcome:12s} {trial.stop_ms or 0:6.0f} {trial.why}")
        trials.append(trial)
    summary = summarize(trials)
    load = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    name = args.name
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"summary": summary, "trials": [asdict(t) for t in trials]}, indent=1)
    )
    text = report(trials, summary, load)
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interruptions", type=int, default=20, help="real sentences")
    parser.add_argument("--no-piper", action="store_true", help="real and generated clips only")
    parser.add_argument("--only", default="", help="clips whose name contains this")
    parser.add_argument("--name", default="interruptions")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
