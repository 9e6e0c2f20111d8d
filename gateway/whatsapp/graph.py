"""Graph API client for call actions: ``POST /{version}/{phone_number_id}/calls``.

Bodies, as the Calling API documents them:
- ``pre_accept`` / ``accept``: ``{"messaging_product": "whatsapp", "call_id",
  "action", "session": {"sdp_type": "answer", "sdp"}}``;
- ``terminate`` (and ``reject``): ``{"messaging_product", "call_id", "action"}``;
- ``connect`` (business-initiated): ``{"messaging_product", "to", "action":
  "connect", "session": {"sdp_type": "offer", "sdp"}}`` -> ``{"calls": [{"id"}]}``.

The request bodies are built by pure functions (tests check them against the
documented shapes); ``GraphClient`` only sends them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class GraphError(Exception):
    """The Graph API refused an action (status and body in the message)."""


def answer_body(call_id: str, action: str, sdp: str) -> dict[str, Any]:
    if action not in ("pre_accept", "accept"):
        raise ValueError(f"an SDP answer goes with pre_accept or accept, not {action!r}")
    return {
        "messaging_product": "whatsapp",
        "call_id": call_id,
        "action": action,
        "session": {"sdp_type": "answer", "sdp": sdp},
    }


def action_body(call_id: str, action: str) -> dict[str, Any]:
    if action not in ("terminate", "reject"):
        raise ValueError(f"unknown call action {action!r}")
    return {"messaging_product": "whatsapp", "call_id": call_id, "action": action}


def connect_body(to: str, sdp: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "action": "connect",
        "session": {"sdp_type": "offer", "sdp": sdp},
    }


@dataclass
class GraphClient:
    base_url: str
    version: str
    phone_number_id: str
    access_token: str
    timeout_s: float = 10.0  # the answer must reach WhatsApp before the caller gives up

    @property
    def calls_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.version}/{self.phone_number_id}/calls"

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.access_token}"}
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            try:
                response = await client.post(self.calls_url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                raise GraphError(f"{body.get('action')}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise GraphError(
                f"{body.get('action')}: HTTP {response.status_code}: {response.text[:300]}"
            )
        try:
            data = response.json()
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    async def pre_accept(self, call_id: str, sdp: str) -> None:
        await self.post(answer_body(call_id, "pre_accept", sdp))

    async def accept(self, call_id: str, sdp: str) -> None:
        await self.post(answer_body(call_id, "accept", sdp))

    async def terminate(self, call_id: str) -> None:
        await self.post(action_body(call_id, "terminate"))

    async def reject(self, call_id: str) -> None:
        await self.post(action_body(call_id, "reject"))

    async def connect(self, to: str, sdp: str) -> str:
        """Place a business-initiated call; returns WhatsApp's call id."""
        data = await self.post(connect_body(to, sdp))
        calls = data.get("calls")
        if isinstance(calls, list) and calls and isinstance(calls[0], dict) and calls[0].get("id"):
            return str(calls[0]["id"])
        raise GraphError(f"connect: no call id in the answer {str(data)[:200]}")
