"""The call note both CRMs get when no body template is set."""

from __future__ import annotations

from typing import Any

from api.postcall.channels.base import default_text
from api.postcall.payload import transcript_text

MAX_NOTE = 30000


def call_note(payload: dict[str, Any]) -> str:
    note = default_text(payload)
    if payload["transcript"]:
        note += "\n\nTranscript:\n" + transcript_text(payload)
    return note[:MAX_NOTE]
