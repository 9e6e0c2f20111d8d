"""Campaign retry policies can name ``voicemail``: a contact whose call an answering
machine took is dialed again, or counted in its own bucket (simulated carrier, real
phone protocol and models)."""

from __future__ import annotations

from tests.api.campaigns.test_campaigns import QUICK_AGENT, contact, poll_until_done


async def run_campaign(api, retry_on: list[str], first: int) -> tuple[dict, dict]:
    agent_id = (await api.post("/api/v1/agents", json=QUICK_AGENT)).json()["id"]
    r = await api.post(
        "/api/v1/bulk-call",
        json={
            "name": "voicemail retries",
            "agent_id": agent_id,
            "contacts": [contact(first, outcome="machine", ring_s=0.05)],
            "concurrency": 1,
            "retry": {"on": retry_on, "max_retries": 1, "delay_s": 0.1},
        },
    )
    assert r.status_code == 201, r.text
    bulk_id = r.json()["id"]
    assert r.json()["retry"]["on"] == retry_on
    final = (await poll_until_done(api, bulk_id, concurrency=1, timeout=120))[-1]
    (row,) = (await api.get(f"/api/v1/bulk-call/{bulk_id}/contacts")).json()["data"]
    return final, row


async def test_a_policy_naming_voicemail_dials_the_machine_again(api) -> None:
    final, row = await run_campaign(api, ["busy", "voicemail"], 9101)
    assert final["summary"]["voicemail"] == 1 and final["summary"]["completed"] == 0
    assert row["attempts"] == 2 and row["state"] == "voicemail"
    assert row["last_outcome"] == "voicemail" and len(row["call_ids"]) == 2
    for call_id in row["call_ids"]:
        detail = (await api.get(f"/api/v1/calls/{call_id}")).json()
        assert detail["status"] == "voicemail" and detail["end_reason"] == "voicemail:hung_up"


async def test_without_it_a_voicemail_is_final(api) -> None:
    final, row = await run_campaign(api, ["busy", "no_answer"], 9102)
    assert final["summary"]["voicemail"] == 1
    assert row["attempts"] == 1 and row["state"] == "voicemail"


async def test_a_retry_policy_names_only_known_outcomes(api) -> None:
    agent_id = (await api.post("/api/v1/agents", json=QUICK_AGENT)).json()["id"]
    r = await api.post(
        "/api/v1/bulk-call",
        json={
            "name": "bad retry",
            "agent_id": agent_id,
            "contacts": [contact(9103)],
            "retry": {"on": ["machine"]},
        },
    )
    assert r.status_code == 422 and "on" in str(r.json()["detail"])
