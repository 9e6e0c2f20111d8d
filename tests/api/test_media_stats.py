"""Issue 18, item 1: a carrier's reordered, repeated or lost frames are counted on the
call record (in the database, not only the log) and shown in the call's detail."""

from __future__ import annotations

COUNTS = {"frames_lost": 1, "frames_reordered": 2, "frames_duplicated": 3}


async def test_media_counters_reach_the_call_record_and_the_api(api, running) -> None:
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={
            "agent_id": running.agent_id,
            "to_number": "+15550183000",
            "call_context": {"simulation": {"outcome": "busy", "ring_s": 0.05}},
        },
    )
    assert r.status_code == 201, r.text
    call_id = r.json()["call_id"]
    store = running.app.state.voxline.store
    await store.update(call_id, media_stats=COUNTS)  # what the bridge writes at call end
    assert (await store.get(call_id)).media_stats == COUNTS
    detail = (await api.get(f"/api/v1/calls/{call_id}")).json()
    assert detail["media_stats"] == COUNTS
