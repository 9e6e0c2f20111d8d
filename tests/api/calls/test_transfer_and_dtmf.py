"""Transfer and DTMF out on live calls, end to end on the simulated carrier (real server,
real models): what the caller hears, what the carrier was asked, what the record says."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.test_control_plane import wait_for_status

# Long enough that the call is still going when the test acts on it.
LINES = ["Hello, I have a question about my bill, it looks too high this month."] * 4


def names(body: dict) -> list[str]:
    """The fields a 422 names."""
    return [str(error["loc"][-1]) for error in body["detail"]]


async def _live_call(api, running, to: str) -> tuple[str, object]:
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={
            "agent_id": running.agent_id,
            "to_number": to,
            "call_context": {"simulation": {"lines": LINES, "ring_s": 0.05}},
        },
    )
    assert r.status_code == 201, r.text
    call_id = r.json()["call_id"]
    await wait_for_status(api, call_id, {"in_progress"}, timeout=30)
    simulated = running.app.state.voxline.simulated
    call = next(c for c in simulated.calls.values() if c.call_id == call_id)
    return call_id, call


async def test_warm_transfer_briefs_the_caller_then_hands_over(api, running) -> None:
    call_id, sim_call = await _live_call(api, running, "+15550147001")
    r = await api.post(
        f"/api/v1/calls/{call_id}/transfer",
        json={
            "to": "+15550199000",
            "mode": "warm",
            "briefing": "Please hold while I connect you to our billing team.",
        },
    )
    assert r.status_code == 202, r.text
    assert r.json()["end_reason"] == "transferred:+15550199000"
    assert r.json()["status"] == "completed"
    assert sim_call.transfers == ["+15550199000"]  # the carrier was asked to move the caller

    detail = await wait_for_status(api, call_id, {"completed"}, timeout=20)
    assert detail["end_reason"] == "transferred:+15550199000"
    lines = detail["transcript"]
    assert any("billing team" in x["text"] for x in lines if x["speaker"] == "agent")
    assert lines[-1]["speaker"] == "system", lines
    assert lines[-1]["text"] == "transferred to +15550199000 (warm)"

    # The callee heard the briefing before the line moved: transcribe what reached it.
    simulated = running.app.state.voxline.simulated
    report = (await simulated.wait(sim_call.carrier_call_id, timeout=20)).report
    assert report is not None and report.closed_by == "server"
    await report.transcribe(running.app.state.voxline.engine.stt)
    assert "billing" in " ".join(u.text.lower() for u in report.heard)

    # A call that is over cannot be transferred again.
    again = await api.post(f"/api/v1/calls/{call_id}/transfer", json={"to": "+15550199000"})
    assert again.status_code == 409


async def test_cold_transfer_to_a_sip_uri_ends_at_once(api, running) -> None:
    call_id, sim_call = await _live_call(api, running, "+15550147002")
    r = await api.post(
        f"/api/v1/calls/{call_id}/transfer", json={"to": "sip:frontdesk@pbx.example.test"}
    )
    assert r.status_code == 202, r.text
    detail = await wait_for_status(api, call_id, {"completed"}, timeout=20)
    assert detail["end_reason"] == "transferred:sip:frontdesk@pbx.example.test"
    assert sim_call.transfers == ["sip:frontdesk@pbx.example.test"]
    assert detail["transcript"][-1]["text"].endswith("(cold)")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": "5551234"}, "to"),  # no +, not a number a carrier can dial
        ({"to": "sip:<script>@x"}, "to"),
        ({"to": "tel:+15551234567"}, "to"),
        ({"to": "+15550199000", "briefing": "hi"}, "briefing"),  # briefing is warm only
        ({"to": "+15550199000", "mode": "hot"}, "mode"),
    ],
)
async def test_bad_transfer_bodies_get_422(api, body, field) -> None:
    r = await api.post("/api/v1/calls/call_0123456789abcdef/transfer", json=body)
    assert r.status_code == 422, r.text
    assert names(r.json()) and field in names(r.json())


async def test_transfer_of_an_unknown_call_is_404(api) -> None:
    r = await api.post("/api/v1/calls/call_0123456789abcdef/transfer", json={"to": "+15550199000"})
    assert r.status_code == 404


async def test_dtmf_reaches_the_callee_and_is_validated(api, running) -> None:
    call_id, sim_call = await _live_call(api, running, "+15550147003")
    r = await api.post(f"/api/v1/calls/{call_id}/dtmf", json={"digits": "1w23#"})
    assert r.status_code == 202, r.text
    assert sim_call.dtmf_received == ["1w23#"]
    for bad in ("12a", "", "1" * 65, "1 2"):
        r = await api.post(f"/api/v1/calls/{call_id}/dtmf", json={"digits": bad})
        assert r.status_code == 422, (bad, r.text)
        assert names(r.json()) == ["digits"]
    assert sim_call.dtmf_received == ["1w23#"]  # nothing invalid was played
    await api.post(f"/api/v1/calls/{call_id}/hangup")
    await wait_for_status(api, call_id, {"completed", "cancelled"}, timeout=20)
    r = await api.post(f"/api/v1/calls/{call_id}/dtmf", json={"digits": "1"})
    assert r.status_code == 409


async def test_a_queued_call_cannot_be_transferred_yet(api, running) -> None:
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={
            "agent_id": running.agent_id,
            "to_number": "+15550147004",
            "call_context": {"simulation": {"outcome": "no-answer", "ring_s": 5}},
        },
    )
    call_id = r.json()["call_id"]
    r = await api.post(f"/api/v1/calls/{call_id}/transfer", json={"to": "+15550199000"})
    assert r.status_code == 409 and "not connected" in r.text
    await api.post(f"/api/v1/calls/{call_id}/hangup")
    await asyncio.sleep(0)


async def test_an_agents_transfer_targets_are_checked_and_kept(api) -> None:
    agent = {
        "name": "Front desk",
        "transfer": {
            "enabled": True,
            "mode": "warm",
            "targets": [{"name": "billing", "to": "+15550199000", "description": "bills"}],
        },
    }
    r = await api.post("/api/v1/agents", json=agent)
    assert r.status_code == 201, r.text
    kept = (await api.get(f"/api/v1/agents/{r.json()['id']}")).json()
    assert kept["spec"]["transfer"]["targets"] == [
        {"name": "billing", "to": "+15550199000", "description": "bills"}
    ]
    bad = {**agent, "transfer": {"enabled": True, "targets": [{"name": "x", "to": "911"}]}}
    r = await api.post("/api/v1/agents", json=bad)
    assert r.status_code == 422
    assert [e["loc"][-3:] for e in r.json()["detail"]] == [["targets", 0, "to"]]
    await api.delete(f"/api/v1/agents/{kept['id']}")
