"""Salesforce REST API with an OAuth access token (Bearer).

1. ``GET /services/data/vXX.X/query?q=SELECT Id FROM Contact WHERE Phone = '...'``;
2. ``PATCH /sobjects/Contact/{id}`` (only with ``contact_fields``) or
   ``POST /sobjects/Contact`` (LastName is required: default "Caller <number>");
3. ``POST /sobjects/Task``: a completed call task (TaskSubtype ``Call``) on the contact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.postcall.channels.base import (
    DeliveryFailed,
    SendContext,
    SendResult,
    excerpt,
    http_call,
    json_body,
)
from api.postcall.channels.crm_notes import call_note
from api.postcall.delivery_config import SalesforceConfig


def soql_string(value: str) -> str:
    """A SOQL string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def task_fields(config: SalesforceConfig, ctx: SendContext, contact_id: str) -> dict[str, Any]:
    p = ctx.payload
    ended = p.get("ended_at") or datetime.now(UTC).isoformat()
    return {
        "Subject": ctx.render(config.subject_template)[:255],
        "Description": ctx.render(config.body_template) if config.body_template else call_note(p),
        "CallDurationInSeconds": round(p.get("duration_s") or 0),
        "CallType": "Outbound" if p["direction"] == "outbound" else "Inbound",
        "CallDisposition": p["status"],
        "CallObject": p["call_id"],
        "WhoId": contact_id,
        "TaskSubtype": "Call",
        "Status": "Completed",
        "ActivityDate": ended[:10],
    }


async def send(config: SalesforceConfig, ctx: SendContext) -> SendResult:
    s = ctx.settings
    instance = config.instance_url or s.salesforce_instance_url
    if not instance:
        raise DeliveryFailed("salesforce: no instance_url configured", retryable=False)
    token = ctx.token(
        config.token_env, s.salesforce_token, "Salesforce", provider="salesforce", url=instance
    )
    base = f"{instance.rstrip('/')}/services/data/{config.api_version or s.salesforce_api_version}"
    auth = {"Authorization": f"Bearer {token}"}
    phone = ctx.payload["contact_number"]
    fields = {k: ctx.render(v) for k, v in config.contact_fields.items()}

    soql = f"SELECT Id FROM Contact WHERE Phone = {soql_string(phone)} LIMIT 1"
    found = json_body(
        await http_call(
            ctx,
            "GET",
            f"{base}/query",
            step="salesforce contact query",
            headers=auth,
            params={"q": soql},
        ),
        "salesforce contact query",
    )
    records = found.get("records") or []
    if records:
        contact_id = str(records[0]["Id"])
        if fields:
            await http_call(
                ctx,
                "PATCH",
                f"{base}/sobjects/Contact/{contact_id}",
                step="salesforce contact update",
                headers=auth,
                json=fields,
            )
    else:
        new_contact = {"LastName": f"Caller {phone}", "Phone": phone, **fields}
        created = json_body(
            await http_call(
                ctx,
                "POST",
                f"{base}/sobjects/Contact",
                step="salesforce contact create",
                headers=auth,
                json=new_contact,
            ),
            "salesforce contact create",
        )
        if not created.get("id"):
            raise DeliveryFailed(f"salesforce contact create: {created.get('errors')}")
        contact_id = str(created["id"])

    response = await http_call(
        ctx,
        "POST",
        f"{base}/sobjects/Task",
        step="salesforce task create",
        headers=auth,
        json=task_fields(config, ctx, contact_id),
    )
    task = json_body(response, "salesforce task create")
    return SendResult(response.status_code, excerpt(f"contact {contact_id}, task {task.get('id')}"))
