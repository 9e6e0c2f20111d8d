"""Every timestamp a response carries is RFC 3339 in UTC, with its offset; a call's
status history is a list of ``{status, at}``."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

from tests.api.test_control_plane import AGENT
from voxline.models import CallDetail

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")


def utc(value: str) -> datetime:
    assert RFC3339_UTC.match(value), value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    return parsed


async def test_agents_versions_and_numbers_carry_utc_offsets(api) -> None:
    before = datetime.now(UTC)
    agent = (await api.post("/api/v1/agents", json=AGENT)).json()
    assert utc(agent["created_at"]) >= before.replace(microsecond=0)
    utc(agent["updated_at"])
    got = (await api.get(f"/api/v1/agents/{agent['id']}")).json()
    utc(got["created_at"]), utc(got["updated_at"])
    for version in (await api.get(f"/api/v1/agents/{agent['id']}/versions")).json():
        utc(version["created_at"])
    number = "+1555017" + f"{datetime.now().microsecond % 10000:04d}"
    r = await api.post("/api/v1/phone-numbers", json={"number": number})
    assert r.status_code == 201, r.text
    utc(r.json()["created_at"])
    for row in (await api.get("/api/v1/phone-numbers")).json():
        utc(row["created_at"])
    for key in (await api.get("/api/v1/keys")).json():
        utc(key["created_at"])


async def test_status_history_is_a_list_of_status_and_rfc3339_time(api, running) -> None:
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={
            "agent_id": running.agent_id,
            "to_number": "+15550143001",
            "call_context": {"simulation": {"outcome": "busy", "ring_s": 0.05}},
        },
    )
    assert r.status_code == 201, r.text
    call_id = r.json()["call_id"]
    async with asyncio.timeout(30):
        while (detail := (await api.get(f"/api/v1/calls/{call_id}")).json())["status"] != "busy":
            await asyncio.sleep(0.1)
    history = detail["status_history"]
    assert [h["status"] for h in history] == ["queued", "ringing", "busy"]
    assert all(set(h) == {"status", "at"} for h in history)
    times = [utc(h["at"]) for h in history]
    assert times == sorted(times)
    # The SDK reads the same shape, typed.
    sdk = CallDetail.model_validate(detail)
    assert [(h.status, h.at) for h in sdk.status_history] == list(
        zip(["queued", "ringing", "busy"], times, strict=True)
    )
