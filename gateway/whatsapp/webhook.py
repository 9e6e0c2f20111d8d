"""Sans-I/O handling of WhatsApp Cloud API webhooks for calls.

Meta signs each webhook body with the app secret: ``X-Hub-Signature-256:
sha256=<hex HMAC-SHA256 of the raw body>``. The signature is checked on the raw
bytes before anything is parsed. A ``calls`` change looks like::

    {"object": "whatsapp_business_account",
     "entry": [{"id": "<WABA id>", "changes": [{"field": "calls", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": "...", "display_phone_number": "..."},
        "calls": [{"id": "wacid...", "from": "...", "to": "...",
                   "event": "connect", "timestamp": "...",
                   "session": {"sdp_type": "offer", "sdp": "v=0..."}}]}}]}]}

``event: "connect"`` with an ``offer`` is a user calling the business; with an
``answer`` it is the callee's answer to a business-initiated call.
``event: "terminate"`` ends a call (either side). For business-initiated calls
the same ``calls`` field also carries progress as ``statuses``::

    "value": {"messaging_product": "whatsapp", "metadata": {...},
              "statuses": [{"id": "wacid...", "type": "call", "status": "RINGING",
                            "timestamp": "...", "recipient_id": "<callee wa id>"}]}

with status RINGING, ACCEPTED or REJECTED. Other changes (messages) are
ignored here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-Hub-Signature-256"


class WebhookError(ValueError):
    """A webhook we refuse; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def sign(body: bytes, app_secret: str) -> str:
    """The header value Meta sends for ``body`` (tests and stubs use it too)."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(body: bytes, header: str | None, app_secret: str | None) -> None:
    if not app_secret:
        raise WebhookError("WhatsApp webhooks are not configured (no app secret)", 503)
    if not header:
        raise WebhookError(f"missing {SIGNATURE_HEADER} header", 401)
    if not header.startswith("sha256="):
        raise WebhookError(f"{SIGNATURE_HEADER} must be 'sha256=<hex>'", 401)
    # Constant-time comparison: a timing leak would let a forger find the HMAC byte by byte.
    # As UTF-8 bytes: compare_digest refuses str with non-ASCII characters (a header byte
    # over 0x7f arrives as one), and a refusal must be a 403, not a crash.
    if not hmac.compare_digest(sign(body, app_secret).encode(), _utf8(header.strip())):
        raise WebhookError(f"{SIGNATURE_HEADER} does not match the body", 403)


def _utf8(text: str) -> bytes:
    # surrogatepass: a query string can carry a lone surrogate; it must not match, not crash.
    return text.encode("utf-8", "surrogatepass")


def verification_challenge(params: dict[str, str], verify_token: str | None) -> str:
    """The ``hub.challenge`` to echo for a valid subscription check, else WebhookError."""
    if not verify_token:
        raise WebhookError("WhatsApp webhooks are not configured (no verify token)", 503)
    if params.get("hub.mode") != "subscribe":
        raise WebhookError("hub.mode must be 'subscribe'", 400)
    if not hmac.compare_digest(_utf8(params.get("hub.verify_token", "")), _utf8(verify_token)):
        raise WebhookError("hub.verify_token does not match", 403)
    challenge = params.get("hub.challenge")
    if not challenge:
        raise WebhookError("hub.challenge is missing", 400)
    return challenge


@dataclass(frozen=True)
class CallConnect:
    call_id: str
    from_number: str
    to_number: str
    phone_number_id: str
    sdp_type: str  # "offer": user-initiated; "answer": reply to our business-initiated offer
    sdp: str


@dataclass(frozen=True)
class CallTerminate:
    call_id: str
    phone_number_id: str
    status: str  # COMPLETED, FAILED, ... as WhatsApp reports it
    duration_s: float | None


@dataclass(frozen=True)
class CallStatusUpdate:
    """Progress of a business-initiated call: RINGING, ACCEPTED or REJECTED."""

    call_id: str
    phone_number_id: str
    status: str
    recipient_id: str


@dataclass(frozen=True)
class CallIgnored:
    call_id: str
    event: str


CallEvent = CallConnect | CallTerminate | CallStatusUpdate | CallIgnored


def parse_calls(body: bytes) -> list[CallEvent]:
    """Every call event in a webhook body; WebhookError (400) for a malformed one.

    A body is all or nothing: an error anywhere means none of it is acted on, so a
    half-understood batch never starts some calls and silently drops others.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the limit
        raise WebhookError(f"body is not JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise WebhookError("body must be a JSON object")
    if data.get("object") != "whatsapp_business_account":
        raise WebhookError("object must be 'whatsapp_business_account'")
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise WebhookError("entry must be a list")
    events: list[CallEvent] = []
    for i, entry in enumerate(entries):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise WebhookError(f"entry[{i}].changes must be a list")
        for j, change in enumerate(changes):
            if not isinstance(change, dict) or change.get("field") != "calls":
                continue
            value = change.get("value")
            where = f"entry[{i}].changes[{j}].value"
            if not isinstance(value, dict):
                raise WebhookError(f"{where} must be an object")
            metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
            phone_number_id = str(metadata.get("phone_number_id", ""))
            calls = value.get("calls")
            statuses = value.get("statuses")
            if statuses is None and not isinstance(calls, list):
                raise WebhookError(f"{where}.calls must be a list")
            if calls is not None and not isinstance(calls, list):
                raise WebhookError(f"{where}.calls must be a list")
            if statuses is not None and not isinstance(statuses, list):
                raise WebhookError(f"{where}.statuses must be a list")
            for k, call in enumerate(calls or []):
                events.append(_parse_call(call, phone_number_id, f"{where}.calls[{k}]"))
            for k, status in enumerate(statuses or []):
                events.append(_parse_status(status, phone_number_id, f"{where}.statuses[{k}]"))
    return events


def _parse_status(status: object, phone_number_id: str, where: str) -> CallEvent:
    if not isinstance(status, dict):
        raise WebhookError(f"{where} must be an object")
    call_id = _str_field(status, "id", where)
    if status.get("type") != "call":
        return CallIgnored(call_id=call_id, event=f"status:{status.get('type')}")
    return CallStatusUpdate(
        call_id=call_id,
        phone_number_id=phone_number_id,
        status=_str_field(status, "status", where).upper(),
        recipient_id=str(status.get("recipient_id", "")),
    )


def _str_field(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise WebhookError(f"{where}.{key} must be a non-empty string")
    return value


def _parse_call(call: object, phone_number_id: str, where: str) -> CallEvent:
    if not isinstance(call, dict):
        raise WebhookError(f"{where} must be an object")
    call_id = _str_field(call, "id", where)
    event = _str_field(call, "event", where)
    if event == "connect":
        session = call.get("session")
        if not isinstance(session, dict):
            raise WebhookError(f"{where}.session must be an object with sdp_type and sdp")
        sdp_type = _str_field(session, "sdp_type", f"{where}.session")
        if sdp_type not in ("offer", "answer"):
            raise WebhookError(f"{where}.session.sdp_type must be 'offer' or 'answer'")
        return CallConnect(
            call_id=call_id,
            from_number=str(call.get("from", "")),
            to_number=str(call.get("to", "")),
            phone_number_id=phone_number_id,
            sdp_type=sdp_type,
            sdp=_str_field(session, "sdp", f"{where}.session"),
        )
    if event == "terminate":
        duration = call.get("duration")
        return CallTerminate(
            call_id=call_id,
            phone_number_id=phone_number_id,
            status=str(call.get("status", "")),
            duration_s=_seconds(duration),
        )
    return CallIgnored(call_id=call_id, event=event)


def _seconds(value: object) -> float | None:
    """A call's duration, if it is one: a finite, non-negative number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an int too big for a float: no call lasts that long
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
