"""Server-Sent Events framing (sans-I/O): what goes on the wire for one event."""

from __future__ import annotations

import json
from typing import Any


def format_event(data: Any, event: str | None = None, id: str | None = None) -> bytes:
    """One SSE message. Multi-line data is split into several ``data:`` lines, as the
    spec requires; the blank line ends the message."""
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        if "\n" in event or "\r" in event:
            raise ValueError("an SSE event name cannot contain a newline")
        lines.append(f"event: {event}")
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    lines.extend(f"data: {line}" for line in text.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str = "keep-alive") -> bytes:
    """A comment line: ignored by clients, keeps proxies from closing an idle stream."""
    return f": {text}\n\n".encode()


def parse_stream(raw: str) -> list[dict[str, str]]:
    """Parse SSE text into events (for tests and the SDK): [{event, data, id}]."""
    events = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        event: dict[str, str] = {}
        data_lines = []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data_lines.append(value)
            elif name in ("event", "id"):
                event[name] = value
        if data_lines:
            event["data"] = "\n".join(data_lines)
            event.setdefault("event", "message")
            events.append(event)
    return events
