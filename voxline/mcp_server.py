"""``voxline mcp``: an MCP server (stdio) so AI assistants can place and read calls.

It talks to a running voxline server through ``voxline.client``, configured by
``VOXLINE_URL`` (default http://127.0.0.1:8000) and ``VOXLINE_API_KEY``. Tools:

- ``list_agents``: the organization's agents (id, name, version, welcome line)
- ``dispatch_call``: place a call with an agent (optionally wait for its end)
- ``get_call``: a call's status, end reason, transcript, summary, sentiment,
  extracted variables and per-turn latency
- ``create_campaign``: a bulk-call campaign from a list of contacts
- ``campaign_status``: a campaign's live status (counters per outcome)

A failed API request becomes a tool error whose text carries the server's
message (e.g. which field was invalid), so the assistant can correct itself.
stdout is the protocol channel: logs go to stderr.
"""

from __future__ import annotations

import logging
from typing import Any

from voxline.client import AsyncClient
from voxline.errors import VoxlineError

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "voxline places and answers phone calls with AI voice agents. Use list_agents to "
    "find an agent id, dispatch_call to call a number (E.164, like +14155550123), "
    "get_call to read the outcome and transcript, create_campaign to call many "
    "contacts, campaign_status to follow one."
)


def _sdk() -> tuple[Any, type[Exception]]:
    """(server class, the exception whose message reaches the client) for mcp 2 or 1."""
    try:  # mcp >= 2
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError

        return MCPServer, ToolError
    except ImportError:  # mcp 1.x
        from mcp.server.fastmcp import FastMCP
        from mcp.server.fastmcp.exceptions import ToolError

        return FastMCP, ToolError


def _client() -> AsyncClient:
    return AsyncClient()  # VOXLINE_URL, VOXLINE_API_KEY


def _fail(exc: VoxlineError) -> Exception:
    # The SDK message already says method, URL, status and the server's detail; only a
    # ToolError's message is shown to the client (other exceptions are hidden).
    return _sdk()[1](exc.message)


def call_result(detail: Any) -> dict[str, Any]:
    return {
        "call_id": detail.id,
        "status": detail.status,
        "ended": detail.ended,
        "end_reason": detail.end_reason,
        "direction": detail.direction,
        "to_number": detail.to_number,
        "duration_s": detail.duration_s,
        "transcript": [
            {"speaker": line.speaker, "text": line.text, "t": line.t} for line in detail.transcript
        ],
        "summary": detail.summary,
        "sentiment": detail.sentiment,
        "extracted": detail.extracted,
        "latency_ms": [
            {"turn": turn.turn, **turn.stages_ms} for turn in detail.latency if turn.stages_ms
        ],
        "has_recording": detail.recording_url is not None,
    }


def build_server() -> Any:
    server = _sdk()[0](name="voxline", instructions=INSTRUCTIONS)

    @server.tool()
    async def list_agents() -> list[dict[str, Any]]:
        """List the voice agents of this organization: id, name, version, welcome line."""
        try:
            async with _client() as vx:
                agents = await vx.agents.list()
        except VoxlineError as exc:
            raise _fail(exc) from exc
        return [
            {
                "id": a.id,
                "name": a.name,
                "version": a.version,
                "welcome_message": a.spec.get("welcome_message"),
            }
            for a in agents
        ]

    @server.tool()
    async def dispatch_call(
        agent_id: str,
        to_number: str,
        call_context: dict[str, Any] | None = None,
        wait_for_end_s: float = 0,
    ) -> dict[str, Any]:
        """Place an outbound call from an agent to a phone number (E.164, e.g.
        +14155550123). call_context: variables for the agent's prompt and welcome line
        (e.g. {"first_name": "Ana"}). wait_for_end_s > 0 waits up to that many seconds
        for the call to end and returns its result (as get_call); otherwise returns the
        call id at once."""
        try:
            async with _client() as vx:
                placed = await vx.calls.dispatch(agent_id, to_number, call_context=call_context)
                if wait_for_end_s <= 0:
                    return {"call_id": placed.call_id, "status": placed.status}
                try:
                    detail = await vx.calls.wait(placed.call_id, timeout=wait_for_end_s)
                except TimeoutError:
                    detail = await vx.calls.get(placed.call_id)
                return call_result(detail)
        except VoxlineError as exc:
            raise _fail(exc) from exc

    @server.tool()
    async def get_call(call_id: str) -> dict[str, Any]:
        """Read a call: status (queued, ringing, in_progress, completed, busy, no_answer,
        failed, cancelled), end reason, duration, transcript, post-call summary,
        sentiment, extracted variables and per-turn latency."""
        try:
            async with _client() as vx:
                return call_result(await vx.calls.get(call_id))
        except VoxlineError as exc:
            raise _fail(exc) from exc

    @server.tool()
    async def create_campaign(
        name: str,
        agent_id: str,
        contacts: list[dict[str, Any]],
        concurrency: int = 3,
        retry_on: list[str] | None = None,
        max_retries: int = 2,
    ) -> dict[str, Any]:
        """Create a bulk-call campaign. contacts: [{"phone_number": "+1...", ...}], other
        keys become variables for the agent. concurrency: calls at once. retry_on:
        outcomes to retry (busy, no_answer, failed). Rejected contacts are listed with
        the reason."""
        retry: dict[str, Any] = {"max_retries": max_retries}
        if retry_on is not None:
            retry["on"] = retry_on
        try:
            async with _client() as vx:
                created = await vx.campaigns.create(
                    name, agent_id, contacts=contacts, concurrency=concurrency, retry=retry
                )
        except VoxlineError as exc:
            raise _fail(exc) from exc
        return {
            "campaign_id": created.id,
            "status": created.status,
            "accepted": created.accepted,
            "rejected": [r.model_dump() for r in created.rejected],
            "summary": created.summary.model_dump(),
        }

    @server.tool()
    async def campaign_status(campaign_id: int) -> dict[str, Any]:
        """A campaign's live status: campaign_status (scheduled, in_progress, paused,
        completed, cancelled) and how many contacts are queued, in progress, completed,
        failed, busy and unanswered."""
        try:
            async with _client() as vx:
                status = await vx.campaigns.live_status(campaign_id)
        except VoxlineError as exc:
            raise _fail(exc) from exc
        return {
            "campaign_id": status.bulk_call_id,
            "campaign_status": status.campaign_status,
            "done": status.done,
            "summary": status.summary.model_dump(),
        }

    return server


def main() -> int:
    logging.basicConfig(level=logging.WARNING)  # stderr: stdout carries the protocol
    build_server().run("stdio")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
