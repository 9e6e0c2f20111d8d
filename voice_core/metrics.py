"""Per-turn latency marks and the stage durations derived from them."""

from __future__ import annotations

# Pipeline order; a complete turn has every mark, each >= the one before it
# (except endpoint, which may come after the speculative stages: see session.py).
MARKS = (
    "speech_end",  # last voiced caller frame
    "stt_final",  # final transcript ready
    "llm_first_token",
    "first_clause",  # first speakable clause cut from the token stream
    "tts_first_audio",  # first synthesized audio of the reply
    "endpoint",  # end-of-turn decision (reply released to the caller)
    "first_audio_out",  # first agent frame handed to the transport
)


def stage_durations(marks: dict[str, float], stt_start: float | None = None) -> dict[str, float]:
    """Milliseconds per stage. ``response`` is endpoint -> first audio out: the budget."""

    def ms(a: str, b: str) -> float | None:
        if a in marks and b in marks:
            return round((marks[b] - marks[a]) * 1000, 1)
        return None

    out: dict[str, float | None] = {
        "endpointing_wait": ms("speech_end", "endpoint"),
        "stt": round((marks["stt_final"] - stt_start) * 1000, 1)
        if stt_start is not None and "stt_final" in marks
        else None,
        "llm_first_token": ms("stt_final", "llm_first_token"),
        "first_clause": ms("llm_first_token", "first_clause"),
        "tts_first_audio": ms("first_clause", "tts_first_audio"),
        "response": ms("endpoint", "first_audio_out"),
        "voice_to_voice": ms("speech_end", "first_audio_out"),
    }
    return {k: v for k, v in out.items() if v is not None}
