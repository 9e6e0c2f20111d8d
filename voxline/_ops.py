"""What each SDK call sends and how its answer is read, written once for both the
sync and the async client (sans-I/O: an ``Op`` is data; the clients do the I/O)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from voxline.models import (
    Agent,
    AgentVersion,
    CallDetail,
    CallPage,
    Campaign,
    CampaignCreated,
    ContactsAdded,
    Delivery,
    DispatchResult,
    LiveStatus,
    WebhookTestResult,
)

T = TypeVar("T")
API = "/api/v1"


def _none(_: Any) -> None:
    return None


@dataclass
class Op(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    json: Any = None
    files: Any = None
    data: dict[str, Any] | None = None
    raw: bool = False  # the answer is bytes (a recording), not JSON
    expect: tuple[int, ...] = field(default=())


def _params(**kw: Any) -> dict[str, Any]:
    return {
        k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in kw.items() if v is not None
    }


def _list(model: Any) -> Callable[[Any], list[Any]]:
    return lambda body: [model.model_validate(x) for x in body]


# ---------------------------------------------------------------- agents


def list_agents() -> Op[list[Agent]]:
    return Op("GET", f"{API}/agents", _list(Agent))


def get_agent(agent_id: str) -> Op[Agent]:
    return Op("GET", f"{API}/agents/{agent_id}", Agent.model_validate)


def create_agent(spec: dict[str, Any]) -> Op[Agent]:
    return Op("POST", f"{API}/agents", Agent.model_validate, json=spec)


def update_agent(agent_id: str, spec: dict[str, Any]) -> Op[Agent]:
    return Op("PUT", f"{API}/agents/{agent_id}", Agent.model_validate, json=spec)


def delete_agent(agent_id: str) -> Op[None]:
    return Op("DELETE", f"{API}/agents/{agent_id}", _none)


def agent_versions(agent_id: str) -> Op[list[AgentVersion]]:
    return Op("GET", f"{API}/agents/{agent_id}/versions", _list(AgentVersion))


def restore_agent_version(agent_id: str, version: int) -> Op[Agent]:
    return Op("POST", f"{API}/agents/{agent_id}/versions/{version}/restore", Agent.model_validate)


# ---------------------------------------------------------------- calls


def dispatch_call(
    agent_id: str,
    to_number: str,
    *,
    from_number: str | None = None,
    call_context: dict[str, Any] | None = None,
    channel: str | None = None,
) -> Op[DispatchResult]:
    body: dict[str, Any] = {"agent_id": agent_id, "to_number": to_number}
    if from_number is not None:
        body["from_number"] = from_number
    if call_context is not None:
        body["call_context"] = call_context
    if channel is not None:
        body["channel"] = channel
    return Op("POST", f"{API}/calls/dispatch", DispatchResult.model_validate, json=body)


def get_call(call_id: str) -> Op[CallDetail]:
    return Op("GET", f"{API}/calls/{call_id}", CallDetail.model_validate)


def list_calls(**filters: Any) -> Op[CallPage]:
    return Op("GET", f"{API}/calls", CallPage.model_validate, params=_params(**filters))


def recording(call_id: str) -> Op[bytes]:
    return Op("GET", f"{API}/calls/{call_id}/recording", lambda b: b, raw=True)


def hangup_call(call_id: str) -> Op[dict[str, Any]]:
    return Op("POST", f"{API}/calls/{call_id}/hangup", dict)


# ---------------------------------------------------------------- campaigns


def _csv_upload(csv_file: str | os.PathLike[str] | bytes | IO[bytes]) -> tuple[str, Any, str]:
    if isinstance(csv_file, bytes):
        return ("contacts.csv", csv_file, "text/csv")
    if isinstance(csv_file, str | os.PathLike):
        path = Path(csv_file)
        return (path.name, path.read_bytes(), "text/csv")
    return ("contacts.csv", csv_file.read(), "text/csv")


def create_campaign(
    name: str,
    agent_id: str,
    *,
    contacts: list[dict[str, Any]] | None = None,
    contacts_csv: str | None = None,
    csv_file: str | os.PathLike[str] | bytes | IO[bytes] | None = None,
    **settings: Any,
) -> Op[CampaignCreated]:
    """``settings``: concurrency, schedule, calling_window, retry, from_number."""
    body: dict[str, Any] = {"name": name, "agent_id": agent_id, **settings}
    if csv_file is not None:
        return Op(
            "POST",
            f"{API}/bulk-call",
            CampaignCreated.model_validate,
            files={"file": _csv_upload(csv_file)},
            data={"campaign": json.dumps(body, default=str)},
        )
    if contacts is not None:
        body["contacts"] = contacts
    if contacts_csv is not None:
        body["contacts_csv"] = contacts_csv
    return Op("POST", f"{API}/bulk-call", CampaignCreated.model_validate, json=body)


def list_campaigns() -> Op[list[Campaign]]:
    return Op("GET", f"{API}/bulk-call", _list(Campaign))


def get_campaign(campaign_id: int) -> Op[Campaign]:
    return Op("GET", f"{API}/bulk-call/{campaign_id}", Campaign.model_validate)


def add_contacts(
    campaign_id: int,
    contacts: list[dict[str, Any]] | None = None,
    *,
    contacts_csv: str | None = None,
) -> Op[ContactsAdded]:
    body: dict[str, Any] = {}
    if contacts is not None:
        body["contacts"] = contacts
    if contacts_csv is not None:
        body["contacts_csv"] = contacts_csv
    return Op(
        "POST", f"{API}/bulk-call/{campaign_id}/contacts", ContactsAdded.model_validate, json=body
    )


def list_contacts(campaign_id: int, **filters: Any) -> Op[dict[str, Any]]:
    return Op("GET", f"{API}/bulk-call/{campaign_id}/contacts", dict, params=_params(**filters))


def campaign_action(campaign_id: int, action: str) -> Op[Campaign]:
    return Op("POST", f"{API}/bulk-call/{campaign_id}/{action}", Campaign.model_validate)


def live_status(campaign_id: int) -> Op[LiveStatus]:
    return Op("GET", f"{API}/bulk-call/{campaign_id}/live-status", LiveStatus.model_validate)


def campaign_events_path(campaign_id: int) -> str:
    return f"{API}/bulk-call/{campaign_id}/events"


# ---------------------------------------------------------------- deliveries, webhooks


def list_deliveries(**filters: Any) -> Op[list[Delivery]]:
    return Op("GET", f"{API}/deliveries", _list(Delivery), params=_params(**filters))


def get_delivery(delivery_id: str) -> Op[Delivery]:
    return Op("GET", f"{API}/deliveries/{delivery_id}", Delivery.model_validate)


def retry_delivery(delivery_id: str) -> Op[Delivery]:
    return Op("POST", f"{API}/deliveries/{delivery_id}/retry", Delivery.model_validate)


def test_webhook(url: str, **options: Any) -> Op[WebhookTestResult]:
    """``options``: method, headers, payload_template, content_type, agent_id."""
    return Op(
        "POST",
        f"{API}/webhooks/test",
        WebhookTestResult.model_validate,
        json={"url": url, **options},
    )
