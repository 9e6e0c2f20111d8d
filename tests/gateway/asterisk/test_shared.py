"""The PBX transports' shared pieces: the playout clock and the Basic credentials check."""

from __future__ import annotations

import base64

from gateway.asterisk.basic_auth import basic_auth_ok
from gateway.asterisk.playout_clock import PlayoutClock


def test_playout_clock_queues_in_order_restarts_when_dry_and_clears() -> None:
    now = [100.0]
    clock = PlayoutClock(lambda: now[0])
    clock.sent(0.5)
    clock.sent(0.5)
    assert clock.queued_s == 1.0
    now[0] += 0.7
    assert abs(clock.queued_s - 0.3) < 1e-9
    now[0] += 5.0  # ran dry: the next audio plays from now, not from the past
    assert clock.queued_s == 0.0
    clock.sent(0.2)
    assert abs(clock.queued_s - 0.2) < 1e-9
    clock.clear()
    assert clock.queued_s == 0.0


def header(user_password: bytes, scheme: str = "Basic") -> str:
    return f"{scheme} {base64.b64encode(user_password).decode()}"


def test_basic_auth() -> None:
    assert basic_auth_ok(header(b"asterisk:s3cret"), "asterisk", "s3cret")
    assert basic_auth_ok(header(b"asterisk:s3cret", "basic"), "asterisk", "s3cret")
    assert not basic_auth_ok(header(b"asterisk:wrong"), "asterisk", "s3cret")
    assert not basic_auth_ok(header(b"other:s3cret"), "asterisk", "s3cret")
    assert not basic_auth_ok(header(b"asterisk"), "asterisk", "s3cret")
    assert not basic_auth_ok(header(b"asterisk:s3cret", "Bearer"), "asterisk", "s3cret")
    assert not basic_auth_ok("Basic !!!not-base64", "asterisk", "s3cret")
    assert not basic_auth_ok(None, "asterisk", "s3cret")
