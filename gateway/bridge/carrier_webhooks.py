"""What every carrier's call-control webhook does the same way: bounded bodies, errors
that name the field, and the call record an answered call (inbound or our own
outbound) belongs to.

A webhook reaches these helpers only after its carrier's signature check passed.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request

from gateway.admission import AdmitAll, CallAdmission
from gateway.agents import AgentDirectory
from gateway.calls import CallRecord, CallStatus, CallStore, Direction, new_call_id
from gateway.stream_tokens import valid_id

log = logging.getLogger(__name__)

# Carriers' webhook bodies are a few kilobytes at most; anything huge is not a carrier.
MAX_WEBHOOK_BYTES = 64 * 1024


def webhook_error(status: int, field: str, message: str) -> HTTPException:
    return HTTPException(status, detail={"field": field, "error": message})


async def bounded_body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise webhook_error(413, "body", f"body over {MAX_WEBHOOK_BYTES} bytes")
    return body


async def form_items(request: Request) -> list[tuple[str, str]]:
    """A form-encoded webhook body, in the order sent (signatures need every value)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise webhook_error(
            415, "content-type", f"expected application/x-www-form-urlencoded, got {content_type!r}"
        )
    body = await bounded_body(request)
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise webhook_error(400, "body", "form body is not UTF-8") from None


def required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise webhook_error(400, name, "required")
    return value


def query_call_id(request: Request) -> str | None:
    """``?call_id=`` on the URLs we hand a carrier for our own outbound calls."""
    call_id = request.query_params.get("call_id")
    if call_id is not None and not valid_id(call_id):
        raise webhook_error(400, "call_id", "not a valid call id")
    return call_id


async def answered_record(
    store: CallStore,
    agents: AgentDirectory,
    *,
    carrier: str,
    carrier_call_id: str,
    call_id: str | None,
    from_number: str,
    to_number: str,
    admission: CallAdmission | None = None,
) -> CallRecord | None:
    """The record of a call being answered: ours (``call_id``, an outbound call we
    placed), one a retried webhook already created, or a new inbound one for the
    agent of the called number. None when no agent answers that number, or the
    organization's cap on calls (``admission``) refuses a new one."""
    if call_id:
        record = await store.get(call_id)
        if record is None:
            raise webhook_error(404, "call_id", f"no call {call_id!r}")
        if record.carrier_call_id != carrier_call_id:
            record = await store.update(call_id, carrier_call_id=carrier_call_id)
        return record
    record = await store.find_by_carrier_id(carrier_call_id)
    if record is not None:
        return record
    agent_id = await agents.for_number(to_number) or agents.default_agent_id
    if agent_id is None:
        log.warning(
            "no agent answers %s; rejecting %s call %s", to_number, carrier, carrier_call_id
        )
        return None
    if why := await (admission or AdmitAll()).refuse(agent_id):
        log.warning("rejecting %s call %s to %s: %s", carrier, carrier_call_id, to_number, why)
        return None
    return await store.create(
        CallRecord(
            id=new_call_id(),
            agent_id=agent_id,
            direction=Direction.INBOUND,
            from_number=from_number,
            to_number=to_number,
            status=CallStatus.RINGING,
            carrier=carrier,
            carrier_call_id=carrier_call_id,
        )
    )
