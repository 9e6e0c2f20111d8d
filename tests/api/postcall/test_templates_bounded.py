"""Issue 14 item 4: one template must not freeze the process. Templates render in a
worker process with a time and output-size limit, and the same check runs at save."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.postcall.templates import TemplateFailed, render

NESTED_LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
HUGE_STRING = "{{ 'a' * 50000000 }}"


async def test_a_nested_range_loop_is_cut_and_the_event_loop_keeps_running() -> None:
    await render("warm {{ x }}", {"x": 1})  # start the worker outside the measurement
    ticks = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks
        while not stop:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    with pytest.raises(TemplateFailed) as caught:
        await render(NESTED_LOOP, {}, timeout_s=0.5)
    elapsed = time.perf_counter() - t0
    stop = True
    await task
    assert caught.value.kind == "timeout"
    assert elapsed < 3.0
    assert ticks >= 10  # the loop ran meanwhile (every live call would have gone silent)
    assert await render("still {{ 'fine' }}", {}) == "still fine"  # a fresh worker


@pytest.mark.parametrize(
    "source",
    [
        HUGE_STRING,
        "{% for i in range(100000) %}{{ 'x' * 50 }}{% endfor %}",  # 5 MB, built in pieces
        "{{ 'ab' ~ 'c' * 2000000 }}",
        "{{ 10 ** 100000000 }}",
    ],
)
async def test_oversized_output_is_refused(source: str) -> None:
    with pytest.raises(TemplateFailed) as caught:
        await render(source, {}, max_chars=1_000_000)
    assert caught.value.kind in ("too_large", "render")


async def test_ordinary_templates_render_as_before() -> None:
    ctx = {"call_id": "call_1", "items": [1, 2, 3], "name": "Ana"}
    assert (
        await render("{{ call_id }}: {{ items | sum }} {{ name | upper }}", ctx) == "call_1: 6 ANA"
    )
    assert await render("{{ 'ab' * 3 }}", {}) == "ababab"
    with pytest.raises(TemplateFailed) as caught:
        await render("{{ missing }}", {})
    assert caught.value.kind == "render"
    with pytest.raises(TemplateFailed) as caught:
        await render("{% for %}", {})
    assert caught.value.kind == "syntax"


async def test_the_cost_check_runs_at_agent_save(api) -> None:
    for source, kind in ((NESTED_LOOP, "template_timeout"), (HUGE_STRING, None)):
        action = {
            "channel": "webhook",
            "config": {"url": "https://example.com/hook", "payload_template": source},
        }
        t0 = time.perf_counter()
        r = await api.post(
            "/api/v1/agents", json={"name": "Bounded", "post_call_actions": [action]}
        )
        assert r.status_code == 422, r.text
        assert time.perf_counter() - t0 < 10
        detail = r.json()["detail"][0]
        assert detail["loc"] == ["body", "post_call_actions", 0, "config", "payload_template"]
        if kind:
            assert detail["type"] == kind
