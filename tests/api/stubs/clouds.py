"""Slack, HubSpot, Salesforce and WhatsApp Cloud, as far as voxline uses them.

Each checks auth and the documented request shape, records a problem for anything
off, and answers with the documented response shape (ids included).
"""

from __future__ import annotations

import re
from itertools import count
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.api.stubs.base import Stub, bearer_ok, json_ok

HS_CALL_STATUSES = {
    "BUSY",
    "CALLING_CRM_USER",
    "CANCELED",
    "COMPLETED",
    "CONNECTING",
    "FAILED",
    "IN_PROGRESS",
    "NO_ANSWER",
    "QUEUED",
    "RINGING",
}


def slack() -> Stub:
    app = FastAPI()
    stub = Stub(app)

    @app.post("/services/{team}/{bot}/{secret}")
    async def incoming(team: str, bot: str, secret: str, request: Request) -> Response:
        item = await stub.record(request)
        body = json_ok(stub, item)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            stub.problem("slack: no text")
            return Response("no_text", status_code=400)
        for block in body.get("blocks", []):
            if not isinstance(block, dict) or "type" not in block:
                stub.problem(f"slack: bad block {block!r}")
                return Response("invalid_blocks", status_code=400)
            for f in block.get("fields", []):
                if f.get("type") not in ("mrkdwn", "plain_text"):
                    stub.problem(f"slack: bad field {f!r}")
        return Response("ok", media_type="text/plain")

    return stub


def hubspot(token: str) -> Stub:
    app = FastAPI()
    stub = Stub(app)
    ids = count(501)
    contacts: dict[str, dict[str, Any]] = {}
    stub.calls = []  # type: ignore[attr-defined]

    def error(message: str, status: int = 400) -> JSONResponse:
        stub.problem(f"hubspot: {message}")
        return JSONResponse(
            {"status": "error", "message": message, "category": "VALIDATION_ERROR"},
            status_code=status,
        )

    @app.post("/crm/v3/objects/contacts/search")
    async def search(request: Request) -> Response:
        item = await stub.record(request)
        if not bearer_ok(stub, item, token):
            return JSONResponse({"status": "error", "category": "INVALID_AUTHENTICATION"}, 401)
        body = json_ok(stub, item) or {}
        try:
            (group,) = body["filterGroups"]
            (f,) = group["filters"]
            assert f["propertyName"] == "phone" and f["operator"] == "EQ"
            value = f["value"]
        except (KeyError, ValueError, AssertionError, TypeError):
            return error(f"search body not understood: {body!r}")
        found = [c for c in contacts.values() if c["properties"].get("phone") == value]
        return JSONResponse({"total": len(found), "results": found[: body.get("limit", 10)]})

    @app.post("/crm/v3/objects/contacts")
    async def create_contact(request: Request) -> Response:
        item = await stub.record(request)
        if not bearer_ok(stub, item, token):
            return JSONResponse({"status": "error"}, 401)
        body = json_ok(stub, item) or {}
        if not isinstance(body.get("properties"), dict):
            return error("properties missing")
        cid = str(next(ids))
        contacts[cid] = {"id": cid, "properties": body["properties"], "archived": False}
        return JSONResponse(contacts[cid], status_code=201)

    @app.patch("/crm/v3/objects/contacts/{cid}")
    async def update_contact(cid: str, request: Request) -> Response:
        item = await stub.record(request)
        if not bearer_ok(stub, item, token):
            return JSONResponse({"status": "error"}, 401)
        body = json_ok(stub, item) or {}
        if cid not in contacts or not isinstance(body.get("properties"), dict):
            return error("unknown contact or no properties", 404 if cid not in contacts else 400)
        contacts[cid]["properties"].update(body["properties"])
        return JSONResponse(contacts[cid])

    @app.post("/crm/v3/objects/calls")
    async def create_call(request: Request) -> Response:
        item = await stub.record(request)
        if not bearer_ok(stub, item, token):
            return JSONResponse({"status": "error"}, 401)
        body = json_ok(stub, item) or {}
        props = body.get("properties") or {}
        if "hs_timestamp" not in props:
            return error("hs_timestamp is required")
        if props.get("hs_call_status") not in HS_CALL_STATUSES:
            return error(f"hs_call_status {props.get('hs_call_status')!r}")
        if not str(props.get("hs_call_duration", "")).isdigit():
            return error("hs_call_duration must be milliseconds")
        for key in ("hs_call_body", "hs_call_from_number", "hs_call_to_number"):
            if not isinstance(props.get(key), str):
                return error(f"{key} missing")
        for assoc in body.get("associations", []):
            to, types = assoc.get("to", {}), assoc.get("types", [])
            if to.get("id") not in contacts:
                return error(f"association to unknown contact {to!r}")
            if types != [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]:
                return error(f"association types {types!r}")
        call_id = str(next(ids))
        stub.calls.append(body)  # type: ignore[attr-defined]
        return JSONResponse({"id": call_id, "properties": props}, status_code=201)

    stub.contacts = contacts  # type: ignore[attr-defined]
    return stub


SOQL = re.compile(r"^SELECT Id FROM Contact WHERE Phone = '((?:[^'\\]|\\.)*)' LIMIT 1$")


def salesforce(token: str, version: str = "v61.0") -> Stub:
    app = FastAPI()
    stub = Stub(app)
    ids = count(1)
    contacts: dict[str, dict[str, Any]] = {}
    stub.tasks = []  # type: ignore[attr-defined]
    prefix = f"/services/data/{version}"

    def error(message: str, code: str = "INVALID_FIELD", status: int = 400) -> JSONResponse:
        stub.problem(f"salesforce: {message}")
        return JSONResponse([{"message": message, "errorCode": code, "fields": []}], status)

    def unauthorized() -> JSONResponse:
        return JSONResponse(
            [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401
        )

    @app.get(prefix + "/query")
    async def query(request: Request) -> Response:
        item = await stub.record(request)
        if not bearer_ok(stub, item, token):
            return unauthorized()
        match = SOQL.match(item.query.get("q", ""))
        if not match:
            return error(f"unexpected SOQL {item.query.get('q')!r}", "MALFORMED_QUERY")
        phone = match.group(1)
        records = [
            {
                "attributes": {"type": "Contact", "url": f"{prefix}/sobjects/Contact/{cid}"},
                "Id": cid,
            }
            for cid, c in contacts.items()
            if c.get("Phone") == phone
        ]
        return JSONResponse({"totalSize": len(records), "done": True, "records": records[:1]})

    @app.post(prefix + "/sobjects/Contact")
    async def create_contact(request: Request) -> Response:
        item = await stub.record(request)
        if not bearer_ok(stub, item, token):
            return unauthorized()
        body = json_ok(stub, item) or {}
        if not body.get("LastName"):
            return error("Required fields are missing: [LastName]", "REQUIRED_FIELD_MISSING")
        cid = f"003{next(ids):015d}"
        contacts[cid] = body
        return JSONResponse({"id": cid, "success": True, "errors": []}, status_code=201)

    @app.patch(prefix + "/sobjects/Contact/{cid}")
    async def update_contact(cid: str, request: Request) -> Response:
        item = await stub.record(request)
        if not bearer_ok(stub, item, token):
            return unauthorized()
        if cid not in contacts:
            return error("entity not found", "NOT_FOUND", 404)
        contacts[cid].update(json_ok(stub, item) or {})
        return Response(status_code=204)

    @app.post(prefix + "/sobjects/Task")
    async def create_task(request: Request) -> Response:
        item = await stub.record(request)
        if not bearer_ok(stub, item, token):
            return unauthorized()
        body = json_ok(stub, item) or {}
        if not body.get("Subject"):
            return error("Required fields are missing: [Subject]", "REQUIRED_FIELD_MISSING")
        if body.get("WhoId") not in contacts:
            return error(f"WhoId {body.get('WhoId')!r}", "INVALID_CROSS_REFERENCE_KEY")
        if body.get("TaskSubtype") != "Call" or not isinstance(
            body.get("CallDurationInSeconds"), int
        ):
            return error(f"not a call task: {body!r}")
        stub.tasks.append(body)  # type: ignore[attr-defined]
        return JSONResponse(
            {"id": f"00T{next(ids):015d}", "success": True, "errors": []}, status_code=201
        )

    stub.contacts = contacts  # type: ignore[attr-defined]
    return stub


def whatsapp(token: str, phone_number_id: str, version: str = "v21.0") -> Stub:
    app = FastAPI()
    stub = Stub(app)
    ids = count(1)

    @app.post("/{ver}/{pnid}/messages")
    async def messages(ver: str, pnid: str, request: Request) -> Response:
        item = await stub.record(request)
        if item.headers.get("authorization") != f"Bearer {token}":
            stub.problem("whatsapp: bad token")
            return JSONResponse(
                {
                    "error": {
                        "message": "Invalid OAuth access token.",
                        "type": "OAuthException",
                        "code": 190,
                    }
                },
                401,
            )
        body = json_ok(stub, item) or {}
        bad = []
        if ver != version or pnid != phone_number_id:
            bad.append(f"path {ver}/{pnid}")
        if body.get("messaging_product") != "whatsapp":
            bad.append("messaging_product")
        if not re.fullmatch(r"\d{7,15}", str(body.get("to", ""))):
            bad.append(f"to {body.get('to')!r}")
        if body.get("type") == "text":
            if not isinstance((body.get("text") or {}).get("body"), str):
                bad.append("text.body")
        elif body.get("type") == "template":
            t = body.get("template") or {}
            if not t.get("name") or not (t.get("language") or {}).get("code"):
                bad.append("template.name/language.code")
        else:
            bad.append(f"type {body.get('type')!r}")
        if bad:
            stub.problem(f"whatsapp: {bad}")
            return JSONResponse(
                {
                    "error": {
                        "message": f"(#100) Invalid parameter {bad}",
                        "type": "OAuthException",
                        "code": 100,
                    }
                },
                400,
            )
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": f"wamid.TEST{next(ids)}"}],
            }
        )

    return stub
