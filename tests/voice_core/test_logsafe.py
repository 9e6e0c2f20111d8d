"""Issue 14, item 7: a caller-supplied id cannot forge or colour a log line.

The Twilio form's ``CallSid``, a media stream's ``streamSid``, a PBX's UUID: any of
them reaches a log call. Before, ``voxline serve`` wrote them as they came, so
``CA1\\n2026-12-02 INFO api: key revoked`` made a second, forged line."""

from __future__ import annotations

import io
import logging

from api.cli import configure_logging
from voice_core.logsafe import MAX_MESSAGE_CHARS, SafeFormatter

FORGED = "CA1\n2026-12-02 10:00:00 INFO api.keys: key vx_admin revoked\x1b[2J"


def _format(msg: str, *args: object, exc: bool = False) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test.logsafe")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        if exc:
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception(msg, *args)
        else:
            logger.warning(msg, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_hostile_id_stays_on_its_own_line() -> None:
    out = _format("no agent answers %s; rejecting call %s", "+1555", FORGED)
    assert out.count("\n") == 1  # the record's own line end only
    assert "\\n2026-12-02" in out and "\x1b" not in out and "\\x1b[2J" in out


def test_a_flood_is_cut_and_tracebacks_keep_their_lines() -> None:
    out = _format("%s", "x" * (MAX_MESSAGE_CHARS * 3))
    assert len(out) < MAX_MESSAGE_CHARS + 100
    tb = _format("failed for %s", FORGED, exc=True)
    assert "Traceback (most recent call last):\n" in tb and "ValueError: boom" in tb


def test_the_server_logs_through_the_safe_formatter() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(logging.INFO)
        assert any(isinstance(h.formatter, SafeFormatter) for h in root.handlers)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
