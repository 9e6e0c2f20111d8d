"""What the dashboard's agent editor relies on: a flow saved whole is a version, a broken
reference is a 422 that names the flow and, in its message, the node and the target, and
restoring an old version brings its flow back (real server, real models)."""

from __future__ import annotations

from gateway.demo_flow import DENTAL_FLOW


def _agent(**changes) -> dict:
    flow = DENTAL_FLOW.model_dump(mode="json")
    return {"name": "Flow versions clinic", "flow": flow, **changes}


async def test_a_flow_edit_is_a_new_version_and_restoring_brings_the_old_flow_back(api) -> None:
    agent = (await api.post("/api/v1/agents", json=_agent())).json()
    old_line = agent["spec"]["flow"]["nodes"][1]["say"]
    edited = agent["spec"]
    edited["flow"]["nodes"][1]["say"] = "Goodbye from the new desk!"
    r = await api.put(f"/api/v1/agents/{agent['id']}", json=edited)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2

    versions = (await api.get(f"/api/v1/agents/{agent['id']}/versions")).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["spec"]["flow"]["nodes"][1]["say"] == "Goodbye from the new desk!"
    assert versions[1]["spec"]["flow"]["nodes"][1]["say"] == old_line

    r = await api.post(f"/api/v1/agents/{agent['id']}/versions/1/restore")
    assert r.status_code == 200 and r.json()["version"] == 3
    assert r.json()["spec"]["flow"]["nodes"][1]["say"] == old_line


async def test_a_node_going_to_an_unknown_node_is_a_422_naming_the_flow_and_the_node(api) -> None:
    agent = (await api.post("/api/v1/agents", json=_agent())).json()
    broken = agent["spec"]
    broken["flow"]["nodes"][0]["next"] = "nowhere"
    r = await api.put(f"/api/v1/agents/{agent['id']}", json=broken)
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "flow"]
    assert "node booking: goes to unknown node 'nowhere'" in error["msg"]
    # nothing was saved
    assert (await api.get(f"/api/v1/agents/{agent['id']}")).json()["version"] == 1

    # a malformed id fails the field itself, which the editor shows beside that input
    broken["flow"]["nodes"][0]["next"] = "No Where"
    r = await api.put(f"/api/v1/agents/{agent['id']}", json=broken)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "flow", "nodes", 0, "next"]
