"""HubSpot CRM v3 with a private-app token (Bearer).

1. ``POST /crm/v3/objects/contacts/search``: the contact whose ``phone`` equals the
   other party's number;
2. ``PATCH /crm/v3/objects/contacts/{id}`` (only with ``contact_properties``) or
   ``POST /crm/v3/objects/contacts`` when there is none;
3. ``POST /crm/v3/objects/calls``: the call engagement, associated to the contact
   (association type 194: call to contact).

A retry re-runs all three: the contact steps are idempotent, the call engagement may
be logged twice if an earlier attempt failed after creating it (at-least-once).
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
from api.postcall.delivery_config import HubSpotConfig

CALL_TO_CONTACT = 194  # HUBSPOT_DEFINED association type id
HS_CALL_STATUS = {
    "completed": "COMPLETED",
    "busy": "BUSY",
    "no_answer": "NO_ANSWER",
    "failed": "FAILED",
    "cancelled": "CANCELED",
}


def call_properties(config: HubSpotConfig, ctx: SendContext) -> dict[str, Any]:
    p = ctx.payload
    ended = p.get("ended_at") or datetime.now(UTC).isoformat()
    return {
        "hs_timestamp": ended,
        "hs_call_title": f"voxline call {p['call_id']}",
        "hs_call_body": ctx.render(config.body_template) if config.body_template else call_note(p),
        "hs_call_duration": str(round((p.get("duration_s") or 0) * 1000)),  # milliseconds
        "hs_call_from_number": p["from_number"],
        "hs_call_to_number": p["to_number"],
        "hs_call_status": HS_CALL_STATUS.get(p["status"], "COMPLETED"),
        "hs_call_direction": "OUTBOUND" if p["direction"] == "outbound" else "INBOUND",
        "hs_call_recording_url": p.get("recording_url") or "",
    }


async def send(config: HubSpotConfig, ctx: SendContext) -> SendResult:
    base = (config.base_url or ctx.settings.hubspot_base_url).rstrip("/")
    token = ctx.token(
        config.token_env, ctx.settings.hubspot_token, "HubSpot", provider="hubspot", url=base
    )
    auth = {"Authorization": f"Bearer {token}"}
    phone = ctx.payload["contact_number"]
    properties = {k: ctx.render(v) for k, v in config.contact_properties.items()}

    search = {
        "filterGroups": [
            {"filters": [{"propertyName": "phone", "operator": "EQ", "value": phone}]}
        ],
        "properties": ["phone", "firstname", "lastname"],
        "limit": 1,
    }
    found = json_body(
        await http_call(
            ctx,
            "POST",
            f"{base}/crm/v3/objects/contacts/search",
            step="hubspot contact search",
            headers=auth,
            json=search,
        ),
        "hubspot contact search",
    )
    results = found.get("results") or []
    if results:
        contact_id = str(results[0]["id"])
        if properties:
            await http_call(
                ctx,
                "PATCH",
                f"{base}/crm/v3/objects/contacts/{contact_id}",
                step="hubspot contact update",
                headers=auth,
                json={"properties": properties},
            )
    else:
        created = json_body(
            await http_call(
                ctx,
                "POST",
                f"{base}/crm/v3/objects/contacts",
                step="hubspot contact create",
                headers=auth,
                json={"properties": {"phone": phone, **properties}},
            ),
            "hubspot contact create",
        )
        if "id" not in created:
            raise DeliveryFailed("hubspot contact create: answer has no id")
        contact_id = str(created["id"])

    engagement = {
        "properties": call_properties(config, ctx),
        "associations": [
            {
                "to": {"id": contact_id},
                "types": [
                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": CALL_TO_CONTACT}
                ],
            }
        ],
    }
    response = await http_call(
        ctx,
        "POST",
        f"{base}/crm/v3/objects/calls",
        step="hubspot call create",
        headers=auth,
        json=engagement,
    )
    call = json_body(response, "hubspot call create")
    return SendResult(response.status_code, excerpt(f"contact {contact_id}, call {call.get('id')}"))
