"""Real recorded speech for the STT tests, read from the packages that ship it.

- Allison Smith's Asterisk prompts (CC-BY-SA-3.0), Debian packages
  ``asterisk-core-sounds-en-wav`` and ``asterisk-core-sounds-en`` (the transcript);
- the two-speaker phone conversation in the ``pyannote-audio`` wheel (MIT),
  installed with ``pip install --no-deps pyannote-audio``.

Nothing is copied into the repository; a test whose recordings are not
installed is skipped and says what to install.
"""

from __future__ import annotations

import pytest

from benchmarks.stt_accuracy import (
    Clip,
    MissingSpeech,
    asterisk_prompts,
    conversation_turns,
    normalizer,
)


@pytest.fixture(scope="session")
def prompts() -> dict[str, Clip]:
    try:
        return {c.name: c for c in asterisk_prompts()}
    except MissingSpeech as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def conversation() -> list[Clip]:
    try:
        return conversation_turns()
    except MissingSpeech as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def norm():
    try:
        return normalizer()
    except ImportError:
        pytest.skip("pip install --no-deps whisper-normalizer; pip install regex more-itertools")


@pytest.fixture(scope="session")
def stt():
    from voice_core.stt.whisper import WhisperSTT

    return WhisperSTT()
