"""The egress check's typed refusals: a name that does not resolve is its own kind of
BlockedTarget, which the save-time check lets through (the send-time check decides)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from api.postcall import egress
from api.postcall.delivery_config import url_errors

# RFC 6761: names under .invalid never resolve, on any resolver.
UNRESOLVABLE = "voxline-test.invalid"


async def test_a_name_that_does_not_resolve_raises_unresolved_host() -> None:
    with pytest.raises(egress.UnresolvedHost) as caught:
        await egress.resolve_checked(UNRESOLVABLE, 80, allow_private=False)
    assert isinstance(caught.value, egress.BlockedTarget)  # callers catching the base still do
    with pytest.raises(egress.BlockedTarget) as caught:
        await egress.resolve_checked("localhost", 80, allow_private=False)
    assert not isinstance(caught.value, egress.UnresolvedHost)  # resolved, then refused


async def test_save_time_check_skips_an_unresolved_host_but_refuses_a_blocked_one() -> None:
    spec = SimpleNamespace(
        post_call_actions=[
            SimpleNamespace(channel="webhook", config={"url": f"http://{UNRESOLVABLE}/hook"}),
            SimpleNamespace(channel="webhook", config={"url": "http://localhost:9/hook"}),
        ]
    )
    errors = await url_errors(spec, allow_private=False)
    assert [e["loc"] for e in errors] == [["body", "post_call_actions", 1, "config", "url"]]
    assert errors[0]["type"] == "ssrf" and "refused" in errors[0]["msg"]
