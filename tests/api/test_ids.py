"""Ids a database cannot hold are refused at the edge: a 422 naming the parameter, never a
500 (schemathesis found ``GET /api/v1/bulk-call/27285188394534928384`` crashing)."""

from __future__ import annotations

import pytest

HUGE = "27285188394534928384"  # beyond a 64-bit integer
BEYOND_INT32 = str(2**31)  # the id columns are 32-bit on PostgreSQL


def refused(r, where: str, name: str) -> bool:
    if r.status_code != 422:
        return False
    return any(e["loc"] == [where, name] for e in r.json()["detail"])


@pytest.mark.parametrize("bad", [HUGE, BEYOND_INT32, "0", "-3"])
async def test_integer_path_ids_out_of_range_get_422_naming_them(api, running, bad) -> None:
    for method, path in [
        ("GET", f"/api/v1/bulk-call/{bad}"),
        ("GET", f"/api/v1/bulk-call/{bad}/contacts"),
        ("GET", f"/api/v1/bulk-call/{bad}/events"),
        ("GET", f"/api/v1/bulk-call/{bad}/live-status"),
        ("POST", f"/api/v1/bulk-call/{bad}/pause"),
    ]:
        r = await api.request(method, path)
        assert refused(r, "path", "bulk_id"), (method, path, r.status_code, r.text)
    r = await api.post(f"/api/v1/bulk-call/{bad}/contacts", json={"contacts": []})
    assert refused(r, "path", "bulk_id"), r.text
    r = await api.post(f"/api/v1/agents/{running.agent_id}/versions/{bad}/restore")
    assert refused(r, "path", "version"), r.text


@pytest.mark.parametrize("bad", [HUGE, BEYOND_INT32, "0"])
async def test_integer_query_ids_out_of_range_get_422_naming_them(api, bad) -> None:
    r = await api.get("/api/v1/calls", params={"bulk_call_id": bad})
    assert refused(r, "query", "bulk_call_id"), r.text
    campaigns = (await api.get("/api/v1/bulk-call")).json()
    bulk = campaigns[0]["id"] if campaigns else 1
    r = await api.get(f"/api/v1/bulk-call/{bulk}/contacts", params={"cursor": HUGE})
    assert refused(r, "query", "cursor"), r.text


async def test_string_ids_that_no_server_makes_get_422_not_a_database_error(api) -> None:
    # A NUL byte is a PostgreSQL error if it reaches a query; a 500-character id fits
    # no column.
    for bad in ["a%00b", "x" * 500]:
        for path, name in [
            (f"/api/v1/agents/{bad}", "agent_id"),
            (f"/api/v1/calls/{bad}", "call_id"),
            (f"/api/v1/deliveries/{bad}", "delivery_id"),
        ]:
            r = await api.get(path)
            assert refused(r, "path", name), (path, r.status_code, r.text)
        r = await api.get("/api/v1/calls", params={"agent_id": bad.replace("%00", "\x00")})
        assert refused(r, "query", "agent_id"), r.text


async def test_a_good_id_that_does_not_exist_is_still_404(api) -> None:
    assert (await api.get("/api/v1/bulk-call/2147483647")).status_code == 404
    assert (await api.get("/api/v1/agents/agt_nosuchagent")).status_code == 404
