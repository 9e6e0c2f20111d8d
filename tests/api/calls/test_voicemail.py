"""Answering-machine detection end to end: outbound dispatch over the real phone protocol
(the simulated carrier's callee on /media-stream), real models, the real server. A
machine (a long greeting, then a real beep tone) gets the agent's message or a hang-up
and the call ends ``voicemail``; a person is greeted as usual."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.simulated.callee import CalleeLine
from gateway.simulated.carrier import SimulatedContact
from tests.api.stubs.base import serving
from tests.api.stubs.receiver import webhook_receiver
from tests.api.test_control_plane import wait_for_status

MESSAGE = "Hi {{first_name}}, this is Bright Smile Dental. Please call us back about your cleaning."


@pytest.fixture(autouse=True)
def loopback_deliveries(running) -> None:
    """The webhook receiver listens on loopback: allow it (the workers read this at use)."""
    s = running.app.state.settings
    s.allow_private_delivery_targets = True
    s.delivery_backoff_base_s = 0.05
    s.delivery_max_attempts = 3


async def make_agent(api, voicemail: dict[str, Any], actions: list[dict] | None = None) -> str:
    spec = {
        "name": "Reminder agent",
        "prompt": {"identity": "You remind patients of appointments.", "style": "Be brief."},
        "welcome_message": "Hello {{first_name}}, this is Bright Smile Dental.",
        "llm": {"max_tokens": 24},
        "voicemail": voicemail,
        "post_call_actions": actions or [],
    }
    r = await api.post("/api/v1/agents", json=spec)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["voicemail"]["action"] == voicemail.get("action", "hang_up")
    return r.json()["id"]


async def dispatch(api, agent_id: str, number: str, simulation: dict | None) -> str:
    context: dict[str, Any] = {"first_name": "Ana"}
    if simulation is not None:
        context["simulation"] = simulation
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={"agent_id": agent_id, "to_number": number, "call_context": context},
    )
    assert r.status_code == 201, r.text
    return r.json()["call_id"]


def sim_call(running, call_id: str):
    simulated = running.app.state.voxline.simulated
    return next(c for c in simulated.calls.values() if c.call_id == call_id)


async def test_a_machine_gets_the_message_after_the_beep(api, running) -> None:
    receiver = webhook_receiver()
    async with serving(receiver):
        agent_id = await make_agent(
            api,
            {"action": "leave_message", "message": MESSAGE},
            [
                {
                    "channel": "webhook",
                    "on_statuses": ["voicemail"],
                    "config": {"url": receiver.base_url + "/calls"},
                }
            ],
        )
        call_id = await dispatch(
            api, agent_id, "+15550148001", {"outcome": "machine", "ring_s": 0.05}
        )
        detail = await wait_for_status(api, call_id, {"voicemail", "completed", "failed"}, 90)
        (hook,) = await receiver.wait_for(1, timeout=30)

    assert detail["status"] == "voicemail", detail
    assert detail["end_reason"] == "voicemail:message_left"
    lines = detail["transcript"]
    machine = [x for x in lines if x["speaker"] == "system"]
    assert len(machine) == 1 and machine[0]["text"].startswith("answering machine (the beep): ")
    assert "after the tone" in machine[0]["text"].lower()  # the greeting, transcribed
    said = [x["text"] for x in lines if x["speaker"] == "agent"]
    assert said == [MESSAGE.replace("{{first_name}}", "Ana")]  # no welcome over the greeting
    assert not [x for x in lines if x["speaker"] == "caller"]

    # What the machine recorded: the message, and only after its beep.
    call = await running.app.state.voxline.simulated.wait(
        sim_call(running, call_id).carrier_call_id, timeout=30
    )
    report = call.report
    assert report is not None and report.closed_by == "server"
    beep = next(s for s in report.said if s.text == "(beep)")
    assert report.heard and all(u.started_at >= beep.ended_at for u in report.heard)
    await report.transcribe(running.app.state.voxline.engine.stt)
    recorded = " ".join(u.text.lower() for u in report.heard)
    assert "call us back" in recorded, recorded

    assert hook.headers["x-voxline-event"] == "call.voicemail"
    payload = hook.json()
    assert payload["call_id"] == call_id and payload["status"] == "voicemail"
    assert any(x["speaker"] == "agent" for x in payload["transcript"])


async def test_a_machine_is_hung_up_on_by_default(api, running) -> None:
    agent_id = await make_agent(api, {})
    call_id = await dispatch(api, agent_id, "+15550148002", {"outcome": "machine", "ring_s": 0.05})
    detail = await wait_for_status(api, call_id, {"voicemail", "completed", "failed"}, 60)
    assert detail["status"] == "voicemail" and detail["end_reason"] == "voicemail:hung_up"
    (note,) = detail["transcript"]
    assert note["speaker"] == "system" and note["text"].startswith("answering machine (")
    report = (
        await running.app.state.voxline.simulated.wait(
            sim_call(running, call_id).carrier_call_id, timeout=30
        )
    ).report
    assert report is not None and report.media_frames == 0  # the machine recorded nothing
    assert all(s.text != "(beep)" for s in report.said)  # gone before its beep

    listed = (await api.get("/api/v1/calls", params={"status": "voicemail"})).json()
    assert call_id in [c["id"] for c in listed["data"]]


async def test_a_person_who_says_hello_first_is_greeted_not_called_a_machine(api, running) -> None:
    agent_id = await make_agent(api, {"action": "leave_message", "message": MESSAGE})
    number = "+15550148003"
    running.app.state.voxline.simulated.contacts[number] = SimulatedContact(
        lines=[
            CalleeLine("Hello, this is Ana speaking."),
            CalleeLine("Yes, thank you, goodbye."),
        ],
        ring_s=0.05,
        speaks_first=True,
    )
    call_id = await dispatch(api, agent_id, number, None)
    detail = await wait_for_status(api, call_id, {"voicemail", "completed", "failed"}, 90)
    assert detail["status"] == "completed", detail
    lines = detail["transcript"]
    assert not [x for x in lines if x["speaker"] == "system"]
    agent_lines = [x["text"] for x in lines if x["speaker"] == "agent"]
    assert agent_lines[0] == "Hello Ana, this is Bright Smile Dental."  # the held welcome
    assert MESSAGE.replace("{{first_name}}", "Ana") not in agent_lines


async def test_a_person_who_waits_in_silence_is_greeted(api, running) -> None:
    agent_id = await make_agent(api, {"action": "leave_message", "message": MESSAGE})
    call_id = await dispatch(
        api,
        agent_id,
        "+15550148004",
        {"lines": ["Thanks, that is all, goodbye."], "ring_s": 0.05},
    )
    detail = await wait_for_status(api, call_id, {"voicemail", "completed", "failed"}, 90)
    assert detail["status"] == "completed", detail
    said = [x["text"] for x in detail["transcript"] if x["speaker"] == "agent"]
    assert said and said[0] == "Hello Ana, this is Bright Smile Dental."


async def test_voicemail_settings_are_checked(api) -> None:
    r = await api.post(
        "/api/v1/agents",
        json={"name": "x", "voicemail": {"action": "leave_message"}},
    )
    assert r.status_code == 422
    assert any(e["loc"][-1] == "message" for e in r.json()["detail"]), r.text
    r = await api.post("/api/v1/agents", json={"name": "x", "voicemail": {"action": "sing"}})
    assert r.status_code == 422
