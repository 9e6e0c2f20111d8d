"""The API keeps its own contract: schemathesis generates requests from /openapi.json and
every answer is a declared status with a body that matches the declared schema, never a
server error. It runs against the real loopback server, with a real API key."""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from api.keys.guard import guard_of
from api.keys.ratelimit import KeyRateLimiter
from tests.api.test_keys_and_limits import new_org

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES = 5  # per operation and mode: bounded, so the whole run stays well under a minute


def _run(base_url: str, key: str) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {key}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,  # the same cases every run: CI does not flip
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=20)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing in this operation can be made invalid (no parameters)
            except (Exception, BaseExceptionGroup) as exc:  # one report per operation
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


async def test_generated_requests_get_declared_statuses_and_schemas(running) -> None:
    _, key = await new_org(running)  # its own organization: the run changes nothing else
    guard = guard_of(running.app)
    saved = guard.rates
    guard.rates = KeyRateLimiter(rate_per_minute=1_000_000)  # conformance, not the limiter
    try:
        failures = await asyncio.to_thread(_run, running.base_url, key)
    finally:
        guard.rates = saved
    assert failures == [], "\n\n".join(failures)
