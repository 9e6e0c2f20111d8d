"""`voxline mcp` over stdio, driven by the official MCP SDK's client session, against a
real running server: tools are listed and called, errors come back as tool errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.voxline.conftest import QUICK_AGENT

ROOT = Path(__file__).resolve().parents[3]
TOOLS = {"list_agents", "dispatch_call", "get_call", "create_campaign", "campaign_status"}


def _is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", getattr(result, "isError", False)))


def _data(result: Any) -> Any:
    assert not _is_error(result), _text(result)
    structured = getattr(result, "structured_content", getattr(result, "structuredContent", None))
    if isinstance(structured, dict) and set(structured) == {"result"}:
        return structured["result"]  # a list result, wrapped
    if structured is not None:
        return structured
    return json.loads(_text(result))


def _text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def test_mcp_tools_over_stdio(running) -> None:
    async with running.client() as api:
        agent_id = (await api.post("/api/v1/agents", json=QUICK_AGENT)).json()["id"]
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "api.cli", "mcp"],
        env={
            **os.environ,
            "VOXLINE_URL": running.base_url,
            "VOXLINE_API_KEY": running.api_key,
        },
        cwd=str(ROOT),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        schema = tools["dispatch_call"]
        schema = getattr(schema, "input_schema", getattr(schema, "inputSchema", None))
        assert {"agent_id", "to_number"} <= set(schema["required"])

        agents = _data(await session.call_tool("list_agents", {}))
        assert agent_id in [a["id"] for a in agents]

        bad = await session.call_tool("dispatch_call", {"agent_id": agent_id, "to_number": "12"})
        assert _is_error(bad) and "to_number" in _text(bad), _text(bad)
        missing = await session.call_tool("get_call", {"call_id": "call_nope"})
        assert _is_error(missing) and "404" in _text(missing)

        done = _data(
            await session.call_tool(
                "dispatch_call",
                {
                    "agent_id": agent_id,
                    "to_number": "+15550179501",
                    "call_context": {
                        "simulation": {"outcome": "answer", "lines": ["Hi there, bye now."]}
                    },
                    "wait_for_end_s": 90,
                },
            )
        )
        assert done["status"] == "completed", done
        call = _data(await session.call_tool("get_call", {"call_id": done["call_id"]}))
        assert call["status"] == "completed" and call["has_recording"]
        assert call["transcript"][0]["speaker"] == "agent"
        assert any(line["speaker"] == "caller" for line in call["transcript"]), call
        assert "summary" in call and "extracted" in call

        created = _data(
            await session.call_tool(
                "create_campaign",
                {
                    "name": "MCP campaign",
                    "agent_id": agent_id,
                    "contacts": [
                        {
                            "phone_number": f"+155501795{i:02d}",
                            "simulation": {"outcome": "busy", "ring_s": 0.1},
                        }
                        for i in range(10, 13)
                    ]
                    + [{"phone_number": "nope"}],
                    "concurrency": 2,
                    "retry_on": [],
                },
            )
        )
        assert created["accepted"] == 3 and len(created["rejected"]) == 1
        for _ in range(150):
            status = _data(
                await session.call_tool("campaign_status", {"campaign_id": created["campaign_id"]})
            )
            if status["done"]:
                break
            await asyncio.sleep(0.2)
        assert status["campaign_status"] == "completed" and status["summary"]["busy"] == 3
