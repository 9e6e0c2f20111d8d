"""A local stand-in for the Graph API's ``/{version}/{phone_number_id}/calls``.

A real HTTP server on 127.0.0.1 that checks what it receives (bearer token,
phone number id, body shape per action) and records every request, so tests
can assert the pre_accept -> accept -> terminate sequence and take the SDP
answer out of it, as WhatsApp's side would.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

VERSION = "v23.0"
PHONE_NUMBER_ID = "106540352242922"
ACCESS_TOKEN = "EAAG-test-token"


def shape_errors(body: Any) -> list[str]:
    """What is wrong with a calls request body (empty: it matches the documented shape)."""
    if not isinstance(body, dict):
        return ["body is not an object"]
    errors = []
    if body.get("messaging_product") != "whatsapp":
        errors.append("messaging_product must be 'whatsapp'")
    action = body.get("action")
    if action in ("pre_accept", "accept"):
        session = body.get("session")
        if not isinstance(session, dict) or session.get("sdp_type") != "answer":
            errors.append(f"{action}: session.sdp_type must be 'answer'")
        elif not str(session.get("sdp", "")).startswith("v=0"):
            errors.append(f"{action}: session.sdp is not SDP")
        if set(body) != {"messaging_product", "call_id", "action", "session"}:
            errors.append(f"{action}: unexpected keys {sorted(body)}")
    elif action == "connect":
        # Business-initiated: {"messaging_product", "to", "action", "session": offer}.
        session = body.get("session")
        if not isinstance(session, dict) or session.get("sdp_type") != "offer":
            errors.append("connect: session.sdp_type must be 'offer'")
        elif not str(session.get("sdp", "")).startswith("v=0"):
            errors.append("connect: session.sdp is not SDP")
        if not str(body.get("to", "")).isdigit():
            errors.append("connect: to must be the callee's WhatsApp number (digits)")
        if set(body) != {"messaging_product", "to", "action", "session"}:
            errors.append(f"connect: unexpected keys {sorted(body)}")
    elif action in ("terminate", "reject"):
        if set(body) != {"messaging_product", "call_id", "action"}:
            errors.append(f"{action}: unexpected keys {sorted(body)}")
    else:
        errors.append(f"unknown action {action!r}")
    if action in ("pre_accept", "accept", "terminate", "reject") and not body.get("call_id"):
        errors.append("call_id missing")
    return errors


@dataclass
class GraphStub:
    requests: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    # Business-initiated calls: the WhatsApp call id handed out -> the connect body.
    placed: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Set to an (HTTP status, Graph error body) to refuse the next connects.
    connect_error: tuple[int, dict[str, Any]] | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{version}/{phone_number_id}/calls")
        async def calls(version: str, phone_number_id: str, request: Request) -> Any:
            if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
                self.errors.append("bad or missing bearer token")
                raise HTTPException(401, detail="invalid OAuth access token")
            if version != VERSION or phone_number_id != PHONE_NUMBER_ID:
                self.errors.append(f"wrong path {version}/{phone_number_id}")
                raise HTTPException(404, detail="unknown phone number id")
            body = await request.json()
            problems = shape_errors(body)
            self.errors.extend(problems)
            if problems:
                raise HTTPException(400, detail="; ".join(problems))
            if body["action"] == "connect":
                if self.connect_error is not None:
                    status, error = self.connect_error
                    return JSONResponse(error, status_code=status)
                wacid = f"wacid.stub-{uuid.uuid4().hex[:16]}"
                async with self.changed:
                    self.placed[wacid] = body
                    self.requests.append({**body, "call_id": wacid})
                    self.changed.notify_all()
                return {"messaging_product": "whatsapp", "calls": [{"id": wacid}]}
            async with self.changed:
                self.requests.append(body)
                self.changed.notify_all()
            return {"messaging_product": "whatsapp", "success": True}

        return app

    async def wait_placed(self, to: str, timeout: float) -> tuple[str, dict[str, Any]]:
        """(WhatsApp call id, connect body) of the first call placed to ``to``."""

        def found() -> tuple[str, dict[str, Any]] | None:
            for wacid, body in self.placed.items():
                if body.get("to") == to:
                    return wacid, body
            return None

        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: found() is not None), timeout)
        result = found()
        assert result is not None
        return result

    def actions(self, call_id: str) -> list[str]:
        return [r["action"] for r in self.requests if r.get("call_id") == call_id]

    async def wait_for(self, call_id: str, action: str, timeout: float) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for r in self.requests:
                if r.get("call_id") == call_id and r.get("action") == action:
                    return r
            return None

        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: found() is not None), timeout)
        result = found()
        assert result is not None
        return result
