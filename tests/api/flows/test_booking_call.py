"""A flow agent end to end: saved through the API (a new version), dispatched over the
real phone protocol to a simulated caller (Piper-voiced lines through the real ear),
the booking read back and confirmed, the call record holding the validated values, and
the post-call analysis taking its variables and summary from them."""

from __future__ import annotations

import asyncio

from gateway.demo_flow import DENTAL_FLOW
from tests.api.test_control_plane import wait_for_status

EXPECTED = {
    "service": "cleaning",
    "day": "Friday",
    "time": "10:00",
    "name": "David Brown",
    "phone": "5551234567",
}


def flow_spec(flow: dict) -> dict:
    return {
        "name": "Dental booking",
        "prompt": {"identity": "You are the receptionist at a dental clinic."},
        "llm": {"max_tokens": 24, "temperature": 0.0},
        "flow": flow,
        "extraction": [
            {"key": "name", "description": "the caller's name"},
            {"key": "day", "description": "the appointment day"},
        ],
    }


async def test_a_booking_call_fills_the_record_and_the_analysis(api) -> None:
    r = await api.post("/api/v1/agents", json=flow_spec(DENTAL_FLOW.model_dump(mode="json")))
    assert r.status_code == 201, r.text
    agent_id = r.json()["id"]
    lines = [
        "I'd like a cleaning on Friday at 10 am.",
        "My name is David Brown.",
        "5 5 5, 1 2 3, 4 5 6 7.",
        "Yes.",
        "Yes.",
    ]
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={
            "agent_id": agent_id,
            "to_number": "+15550149001",
            "call_context": {"simulation": {"lines": lines, "ring_s": 0.05}},
        },
    )
    assert r.status_code == 201, r.text
    call_id = r.json()["call_id"]
    detail = await wait_for_status(api, call_id, {"completed", "failed"}, 120)
    agent_said = [t["text"] for t in detail["transcript"] if t["speaker"] == "agent"]
    assert detail["status"] == "completed", agent_said
    assert detail["flow"]["values"] == EXPECTED, detail["transcript"]
    assert detail["flow"]["completed"] and detail["end_reason"] == "agent_ended"
    assert "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?" in agent_said
    assert "So that's a cleaning on Friday at 10 am, for David Brown. Shall I book it?" in (
        agent_said
    )
    async with asyncio.timeout(120):
        while (detail := (await api.get(f"/api/v1/calls/{call_id}")).json())["summary"] is None:
            await asyncio.sleep(0.5)
    assert (
        detail["summary"] == "David Brown booked a cleaning on Friday at 10 am; phone 5551234567."
    )
    assert {k: detail["extracted"][k] for k in EXPECTED} == EXPECTED


async def test_a_broken_flow_is_refused_naming_the_field(api) -> None:
    flow = DENTAL_FLOW.model_dump(mode="json")
    flow["nodes"][0]["next"] = "nowhere"
    r = await api.post("/api/v1/agents", json=flow_spec(flow))
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"][:2] == ["body", "flow"] and "nowhere" in detail["msg"]


async def test_a_flow_edit_is_a_new_version(api) -> None:
    r = await api.post("/api/v1/agents", json=flow_spec(DENTAL_FLOW.model_dump(mode="json")))
    agent = r.json()
    flow = DENTAL_FLOW.model_dump(mode="json")
    flow["nodes"][0]["say"] = "Bright Smile Dental, this is Sam. How can I help?"
    r = await api.put(f"/api/v1/agents/{agent['id']}", json=flow_spec(flow))
    assert r.status_code == 200, r.text
    assert r.json()["version"] == agent["version"] + 1
    assert r.json()["spec"]["flow"]["nodes"][0]["say"].startswith("Bright Smile Dental, this")


async def test_a_flow_node_calls_the_customers_api_and_says_its_answer(api, running) -> None:
    """The flow decides the call (the 135M model never emits one): the day collected,
    POST /bookings on the customer's API (a real loopback server checking the JSON
    body), the booking id it returns said to the caller."""
    from tests.api.stubs.base import serving
    from tests.api.tools.stubs import customer_api

    settings = running.app.state.settings
    settings.allow_private_delivery_targets = True  # the customer's API is on loopback
    try:
        async with serving(customer_api()) as shop:
            flow = {
                "start": "ask",
                "slots": [{"name": "day", "type": "weekday", "prompt": "Which day?"}],
                "nodes": [
                    {
                        "id": "ask",
                        "say": "Hello, which day would you like to come in?",
                        "collect": ["day"],
                        "tool": {"name": "book", "arguments": {"day": "{day:value}"}},
                        "next": "done",
                    },
                    {
                        "id": "done",
                        "say": "You're booked, reference {tools.book.booking_id}. Goodbye!",
                        "action": "end_call",
                    },
                ],
            }
            spec = flow_spec(flow)
            spec["tools"] = [
                {
                    "name": "book",
                    "description": "Book a visit on a day.",
                    "parameters": {
                        "type": "object",
                        "properties": {"day": {"type": "string"}},
                        "required": ["day"],
                    },
                    "url": shop.base_url + "/bookings",
                    "method": "POST",
                }
            ]
            r = await api.post("/api/v1/agents", json=spec)
            assert r.status_code == 201, r.text
            r = await api.post(
                "/api/v1/calls/dispatch",
                json={
                    "agent_id": r.json()["id"],
                    "to_number": "+15550149002",
                    "call_context": {"simulation": {"lines": ["Tuesday, please."]}},
                },
            )
            call_id = r.json()["call_id"]
            detail = await wait_for_status(api, call_id, {"completed", "failed"}, 120)
            agent_said = [t["text"] for t in detail["transcript"] if t["speaker"] == "agent"]
            assert shop.received, (detail["transcript"], detail["end_reason"], detail.get("flow"))
            (booking,) = shop.received
            assert booking.method == "POST" and booking.json() == {"day": "Tuesday"}
            assert shop.problems == []
            assert "You're booked, reference 41. Goodbye!" in " ".join(agent_said), agent_said
            assert detail["end_reason"] == "agent_ended"
    finally:
        settings.allow_private_delivery_targets = False
