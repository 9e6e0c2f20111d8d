"""When a stage fails: what one turn does about it, and when the call gives up.

A stage (STT, LLM, TTS) that raises fails its turn, not the call. The policy, kept
here apart from the asyncio plumbing of ``session``:

- a failed turn is tried once more (``RETRIES``), unless the caller already heard
  part of it (a retry would repeat those words) or the error says waiting again is
  pointless (the LLM's first token never came: the caller has waited long enough);
- then the agent's ``fallback_line`` is said in its place, so the caller hears
  something rather than silence;
- ``AgentConfig.max_failed_turns`` turns failing in a row mean the stage is down, not
  glitching: the call ends (``error:<stage>:<exception>``) once the caller has heard
  that turn's fallback line. If even the fallback line cannot be spoken (TTS is
  down), nothing can reach the caller and the call ends at once.

Partial transcriptions are not turns: one that fails is skipped (the live caption
misses an update) and the final transcription decides the turn.
"""

from __future__ import annotations

from dataclasses import dataclass

RETRIES = 1  # each failed turn is tried once more before the fallback line


class StageError(Exception):
    """A pipeline stage failed for one turn: which stage, and the exception it raised."""

    def __init__(self, stage: str, cause: BaseException, *, retryable: bool = True) -> None:
        super().__init__(f"{stage}: {type(cause).__name__}: {cause}")
        self.stage = stage  # "stt" | "llm" | "tts"
        self.cause = cause
        self.retryable = retryable

    @property
    def end_reason(self) -> str:
        """The call's end reason when this stage keeps failing (end_reasons' format)."""
        return f"error:{self.stage}:{type(self.cause).__name__}"


@dataclass(frozen=True)
class TurnFailure:
    """A turn that failed after its retry: why, and whether its fallback line was heard."""

    error: StageError
    fallback_heard: bool


def should_retry(error: StageError, attempt: int, *, heard_any: bool) -> bool:
    """Try the turn again after ``attempt`` (1-based) failed with ``error``?"""
    return attempt <= RETRIES and error.retryable and not heard_any


@dataclass
class TurnFaults:
    """One call's failed turns in a row, and when they end the call."""

    limit: int  # AgentConfig.max_failed_turns
    in_a_row: int = 0

    def turn_failed(self, failure: TurnFailure) -> bool:
        """Count a failed turn; True when the call should end after it."""
        self.in_a_row += 1
        return self.in_a_row >= self.limit or not failure.fallback_heard

    def turn_succeeded(self) -> None:
        self.in_a_row = 0
