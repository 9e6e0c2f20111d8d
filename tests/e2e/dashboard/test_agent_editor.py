"""The dashboard's agent editor in real headless Chromium, against a real server.

A flow node's line edited in the structured form and saved is a new version the API
returns, and restoring the old one from the versions tab brings the line back; a node
whose next names no node is refused by the API and the error shows beside that field,
in the form and in the raw JSON view. Screenshots land in the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from gateway.demo_flow import DENTAL_FLOW
from tests.e2e.browser_driver import DevTools
from tests.e2e.dashboard.test_dashboard import CHROMIUM, _launch, _screenshot, _until

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (make install / scripts/install-system.sh)"
)


def _flow_agent(name: str) -> dict:
    return {
        "name": name,
        "prompt": {"identity": "You book dental appointments."},
        "flow": DENTAL_FLOW.model_dump(mode="json"),
    }


@pytest.fixture
async def editor(running, tmp_path: Path) -> AsyncIterator[DevTools]:
    """A signed-in dashboard page, on the agents view."""
    proc, page_ws = await asyncio.to_thread(_launch, tmp_path)
    try:
        async with websockets.connect(page_ws, max_size=2**26) as ws:
            cdp = DevTools(ws)
            await cdp.send("Page.enable")
            await cdp.send("Page.navigate", url=f"{running.base_url}/dashboard/#agents")
            await _until(
                cdp, "document.readyState === 'complete' && !!window.voxlineDashboard", 20, "page"
            )
            await cdp.evaluate(
                f"document.getElementById('login-key').value = {json.dumps(running.api_key)};"
                "document.getElementById('login-form').requestSubmit()"
            )
            await _until(cdp, "!document.getElementById('view-agents').hidden", 10, "agents view")
            yield cdp
    finally:
        proc.kill()
        proc.wait(10)


async def _open(cdp: DevTools, agent_id: str) -> None:
    item = f"document.querySelector('#agent-list li[data-agent-id=\"{agent_id}\"]')"
    await _until(cdp, f"!!{item}", 10, "the agent in the list")
    await cdp.evaluate(f"{item}.click()")
    await _until(cdp, "!!document.querySelector('[data-path=\"flow.nodes.0.say\"]')", 10, "form")


async def _type(cdp: DevTools, path: str, text: str) -> None:
    """Types into the form field at ``path`` the way a user does (an input event)."""
    await cdp.evaluate(
        f"(() => {{ const f = document.querySelector('[data-path=\"{path}\"]')"
        ".querySelector('input, textarea');"
        f" f.value = {json.dumps(text)};"
        " f.dispatchEvent(new Event('input', {bubbles: true})); })()"
    )


async def test_a_flow_line_edited_in_the_form_is_saved_as_a_new_version(
    running, editor, tmp_path
) -> None:
    cdp = editor
    async with running.client() as api:
        agent = (await api.post("/api/v1/agents", json=_flow_agent("Editor clinic"))).json()
        await cdp.evaluate("window.voxlineDashboard.agents.load()")
        await _open(cdp, agent["id"])
        # The structured view shows the flow: nodes, slots with their types, global nodes.
        shown = await cdp.evaluate(
            "({say: document.querySelector('[data-path=\"flow.nodes.1.say\"] textarea').value,"
            " slotType: document.querySelector('[data-path=\"flow.slots.0.type\"] select').value,"
            " phrases: document.querySelector("
            "'[data-path=\"flow.global_nodes.0.phrases\"] input').value})"
        )
        assert shown["say"].startswith("We'll see you on {day}.")
        assert shown["slotType"] == "enum"
        assert "hours" in shown["phrases"]

        line = "See you on {day}. Goodbye from the new front desk!"
        await _type(cdp, "flow.nodes.1.say", line)
        await cdp.evaluate("document.getElementById('agent-save').click()")
        saved = await _until(
            cdp,
            "document.getElementById('agent-saved').textContent.match(/version \\d+/)?.[0]",
            10,
            "the saved note",
        )
        assert saved == "version 2"
        await _screenshot(cdp, tmp_path / "agent-editor.png")

        r = await api.get(f"/api/v1/agents/{agent['id']}")
        assert r.json()["version"] == 2
        flow = r.json()["spec"]["flow"]
        assert flow["nodes"][1]["say"] == line
        # Nothing the form does not show was lost on the way (the enum's words, the
        # global nodes, the read-back of the phone slot).
        original = agent["spec"]["flow"]
        assert flow["slots"] == original["slots"]
        assert flow["global_nodes"] == original["global_nodes"]
        versions = (await api.get(f"/api/v1/agents/{agent['id']}/versions")).json()
        assert [v["version"] for v in versions] == [2, 1]

        # The versions tab lists both; restoring v1 brings the old line back as v3.
        await cdp.evaluate("document.querySelector('.tab[data-tab=\"versions\"]').click()")
        restore = "document.querySelector('#agent-versions [data-restore=\"1\"]')"
        await _until(cdp, f"!!{restore}", 10, "the restore button of v1")
        await cdp.evaluate(f"{restore}.click()")
        await _until(
            cdp,
            "document.getElementById('agent-saved').textContent.includes('as version 3')",
            10,
            "the restored note",
        )
        r = await api.get(f"/api/v1/agents/{agent['id']}")
        assert r.json()["version"] == 3
        assert r.json()["spec"]["flow"]["nodes"][1]["say"] == original["nodes"][1]["say"]
        await cdp.evaluate("document.querySelector('.tab[data-tab=\"flow\"]').click()")
        assert (
            await cdp.evaluate(
                "document.querySelector('[data-path=\"flow.nodes.1.say\"] textarea').value"
            )
            == original["nodes"][1]["say"]
        )


async def test_a_node_going_to_an_unknown_node_is_refused_beside_its_field(
    running, editor, tmp_path
) -> None:
    cdp = editor
    async with running.client() as api:
        agent = (await api.post("/api/v1/agents", json=_flow_agent("Broken clinic"))).json()
        await cdp.evaluate("window.voxlineDashboard.agents.load()")
        await _open(cdp, agent["id"])

        await _type(cdp, "flow.nodes.0.next", "nowhere")
        await cdp.evaluate("document.getElementById('agent-save').click()")
        note = await _until(
            cdp,
            "document.querySelector('[data-path=\"flow.nodes.0.next\"] .field-error')?.textContent",
            10,
            "the error beside the node's next",
        )
        assert "unknown node 'nowhere'" in note
        # the summary list names the field the API named
        assert await cdp.evaluate(
            "[...document.querySelectorAll('#agent-errors li')].map(li => li.dataset.field)"
        ) == ["flow"]
        await _screenshot(cdp, tmp_path / "agent-editor-error.png")

        # The raw JSON view of the flow is the fallback: the same mistake typed there is
        # shown beside that box.
        await cdp.evaluate("document.querySelector('input[name=flow-mode][value=raw]').click()")
        await _until(cdp, "!document.getElementById('flow-raw').hidden", 5, "the raw view")
        raw = json.loads(await cdp.evaluate("document.getElementById('flow-json').value"))
        assert raw["nodes"][0]["next"] == "nowhere"  # the form's edit carried over
        raw["nodes"][0]["next"] = "goodbye"
        raw["global_nodes"][0]["then"] = "closing_time"
        await cdp.evaluate(
            f"document.getElementById('flow-json').value = {json.dumps(json.dumps(raw))};"
            "document.getElementById('agent-save').click()"
        )
        note = await _until(
            cdp,
            "document.querySelector('#flow-raw .field-error')?.textContent",
            10,
            "the error beside the raw flow",
        )
        assert "unknown node 'closing_time'" in note

        # Nothing was saved.
        r = await api.get(f"/api/v1/agents/{agent['id']}")
        assert r.json()["version"] == 1


async def test_tools_and_web_search_are_edited_in_their_form(running, editor) -> None:
    cdp = editor
    async with running.client() as api:
        agent = (await api.post("/api/v1/agents", json=_flow_agent("Tools clinic"))).json()
        await cdp.evaluate("window.voxlineDashboard.agents.load()")
        await _open(cdp, agent["id"])
        await cdp.evaluate("document.querySelector('.tab[data-tab=\"tools\"]').click()")
        await cdp.evaluate(
            "[...document.querySelectorAll('#tools-form button')]"
            ".find(b => b.textContent === 'Add tool').click()"
        )
        await _until(cdp, "!!document.querySelector('[data-path=\"tools.0.url\"]')", 5, "a tool")
        await _type(cdp, "tools.0.name", "order_status")
        await _type(cdp, "tools.0.description", "Look up an order by its number.")
        await _type(cdp, "tools.0.url", "http://127.0.0.1/orders/{order_id}")
        await _type(
            cdp,
            "tools.0.parameters",
            json.dumps({"type": "object", "properties": {"order_id": {"type": "string"}}}),
        )
        await cdp.evaluate(
            "document.querySelector('[data-path=\"web_search.enabled\"] input').click()"
        )
        await _type(cdp, "web_search.base_url", "http://10.0.0.5:8080")
        await cdp.evaluate("document.getElementById('agent-save').click()")
        # The egress policy refuses both private targets, each beside its own field.
        settings = running.app.state.settings
        assert settings.allow_private_delivery_targets is False  # the shipped default
        notes = await _until(
            cdp,
            "(() => { const n = [...document.querySelectorAll('#tools-form .field-error')];"
            " return n.length >= 2 && n.map(e => e.dataset.errorFor); })()",
            10,
            "the tool and search errors",
        )
        assert set(notes) == {"tools.0.url", "web_search.base_url"}

        # An operator who lets tenants reach the internal network: the same form saves.
        settings.allow_private_delivery_targets = True
        try:
            await _type(cdp, "tools.0.url", "http://127.0.0.1:9/orders/{order_id}")
            await _type(cdp, "web_search.base_url", "http://127.0.0.1:9")
            await cdp.evaluate("document.getElementById('agent-save').click()")
            await _until(
                cdp,
                "document.getElementById('agent-saved').textContent.includes('version 2')",
                10,
                "the saved note",
            )
        finally:
            settings.allow_private_delivery_targets = False
        spec = (await api.get(f"/api/v1/agents/{agent['id']}")).json()["spec"]
        assert spec["tools"][0]["name"] == "order_status"
        assert spec["tools"][0]["parameters"]["properties"] == {"order_id": {"type": "string"}}
        assert spec["web_search"]["enabled"] is True
        assert spec["web_search"]["base_url"] == "http://127.0.0.1:9"
        assert spec["flow"] == agent["spec"]["flow"]  # the flow went along untouched
