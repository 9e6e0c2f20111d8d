"""Values from callers, carriers and tenants, made safe for one log line.

A caller can put a newline, an ANSI escape or a megabyte into an id or a name; logged
as is, that forges log lines or floods the log. ``safe_id`` keeps an id that looks
like one and quotes (``repr``, cut short) anything else; ``safe_text`` escapes control
characters of free text and cuts it. ``SafeFormatter`` applies the same escaping to
every message the process logs (tracebacks keep their lines), so a value that reaches
a log call without ``safe_*`` still cannot forge a line.
"""

from __future__ import annotations

import logging
import re

_ID = re.compile(r"^[A-Za-z0-9_.:+@-]{1,80}$")
MAX_MESSAGE_CHARS = 8000


def safe_id(value: object, limit: int = 80) -> str:
    text = str(value)
    if _ID.match(text):
        return text
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def _escape(text: str) -> str:
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def safe_text(value: object, limit: int = 500) -> str:
    text = str(value)
    return _escape(text[:limit]) + ("..." if len(text) > limit else "")


class SafeFormatter(logging.Formatter):
    """One record, one line: control characters in the message are escaped, and a
    message is cut at ``MAX_MESSAGE_CHARS``."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = safe_text(record.message, MAX_MESSAGE_CHARS)
        return super().formatMessage(record)
