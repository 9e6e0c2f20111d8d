"""An incremental Server-Sent Events parser (sans-I/O): feed text as it arrives,
get complete events back. The SDK's sync and async clients share it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None


class SSEParser:
    def __init__(self) -> None:
        self._buffer = ""
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self.last_id: str | None = None

    def feed(self, text: str) -> list[ServerSentEvent]:
        self._buffer += text.replace("\r\n", "\n").replace("\r", "\n")
        out: list[ServerSentEvent] = []
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            event = self._line(line)
            if event is not None:
                out.append(event)
        return out

    def _line(self, line: str) -> ServerSentEvent | None:
        if line == "":  # a blank line dispatches the event
            if not self._data:
                self._event = None
                return None
            event = ServerSentEvent(self._event or "message", "\n".join(self._data), self._id)
            self.last_id = self._id or self.last_id
            self._event, self._data, self._id = None, [], None
            return event
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None
