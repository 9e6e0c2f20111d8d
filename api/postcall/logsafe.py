"""Values from requests and tenants, made safe for one log line.

A caller can put a newline, an ANSI escape or a megabyte into an id or a name; logged
as is, that forges log lines or floods the log. ``safe_id`` keeps an id that looks
like one and quotes (``repr``, cut short) anything else; ``safe_text`` escapes control
characters of free text and cuts it.
"""

from __future__ import annotations

import re

_ID = re.compile(r"^[A-Za-z0-9_.:+@-]{1,80}$")


def safe_id(value: object, limit: int = 80) -> str:
    text = str(value)
    if _ID.match(text):
        return text
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def safe_text(value: object, limit: int = 500) -> str:
    text = str(value)
    cut = text[:limit]
    escaped = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in cut
    )
    return escaped + ("..." if len(text) > limit else "")
