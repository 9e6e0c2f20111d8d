"""Outbound calls and hang-ups through the Vonage Voice API.

Requests carry an application JWT (RS256, signed with the application's private key;
claims ``application_id``, ``iat``, ``exp``, ``jti``) as ``Authorization: Bearer``:

- ``POST {base}/v1/calls`` with ``to`` / ``from`` endpoints, ``answer_url`` and
  ``event_url`` (lists); Vonage answers 201 ``{"uuid", "status", "conversation_uuid"}``
  and fetches the NCCO from the answer URL once the callee picks up;
- ``PUT {base}/v1/calls/{uuid}`` with ``{"action": "hangup"}`` ends a call (204);
  with ``{"action": "transfer", "destination": {"type": "ncco", "ncco": [...]}}`` it
  runs a new NCCO on the call: a ``connect`` to the target, which ends our websocket
  leg (204);
- ``PUT {base}/v1/calls/{uuid}/dtmf`` with ``{"digits": ...}`` plays keys into the
  call (200).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from gateway.calls import CallStatus, CallStore, Direction
from gateway.carriers import CarrierError

log = logging.getLogger(__name__)

_JWT_LIFE_S = 300
# The Voice API's call status -> ours.
CALL_STATUS = {
    "started": CallStatus.QUEUED,
    "ringing": CallStatus.RINGING,
    "answered": CallStatus.IN_PROGRESS,
    "machine": CallStatus.IN_PROGRESS,
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "rejected": CallStatus.BUSY,
    "timeout": CallStatus.NO_ANSWER,
    "unanswered": CallStatus.NO_ANSWER,
    "failed": CallStatus.FAILED,
    "cancelled": CallStatus.CANCELLED,
}


def connect_ncco(to: str, from_number: str = "") -> list[dict[str, Any]]:
    """The NCCO that bridges the call to ``to``: a phone endpoint (digits, no '+', as
    Vonage writes numbers) or a SIP one; ``from_number`` (one of ours) as caller id."""
    if to.lower().startswith(("sip:", "sips:")):
        endpoint: dict[str, Any] = {"type": "sip", "uri": to}
    else:
        endpoint = {"type": "phone", "number": to.lstrip("+")}
    action: dict[str, Any] = {"action": "connect", "endpoint": [endpoint]}
    if from_number:
        action["from"] = from_number.lstrip("+")
    return [action]


def vonage_digits(digits: str) -> str:
    """Vonage pauses 0.5 s on ``p``: our w (0.5 s) is one, W (1 s) two."""
    return digits.replace("w", "p").replace("W", "pp")


def outbound_urls(base: str, call_id: str) -> tuple[str, str]:
    """(answer URL, event URL) of a call we place."""
    query = urlencode({"call_id": call_id})
    return f"{base}/vonage/answer?{query}", f"{base}/vonage/event?{query}"


class VonageApi:
    def __init__(
        self,
        application_id: str,
        private_key: str,
        *,
        api_base: str = "https://api.nexmo.com",
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._application_id = application_id
        self._private_key = private_key
        self._base = api_base.rstrip("/") + "/v1/calls"
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None

    def _jwt(self) -> str:
        now = int(time.time())
        claims = {
            "application_id": self._application_id,
            "iat": now,
            "exp": now + _JWT_LIFE_S,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._private_key, algorithm="RS256")

    async def create_call(self, body: dict[str, Any]) -> str:
        response = await self._request("POST", "", body)
        data = _json(response)
        if response.status_code != 201 or not isinstance(data.get("uuid"), str):
            raise CarrierError(f"Vonage refused the call {_refusal(response)}")
        return data["uuid"]

    async def hang_up(self, call_uuid: str) -> bool:
        response = await self._request("PUT", f"/{call_uuid}", {"action": "hangup"})
        if response.status_code in (200, 204):
            return True
        if response.status_code in (400, 404):  # already over, or never existed
            return False
        raise CarrierError(f"Vonage refused hangup {_refusal(response)}")

    async def transfer(self, call_uuid: str, ncco: list[dict[str, Any]]) -> None:
        body = {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}}
        response = await self._request("PUT", f"/{call_uuid}", body)
        if response.status_code not in (200, 204):
            raise CarrierError(f"Vonage did not transfer call {call_uuid} {_refusal(response)}")

    async def send_dtmf(self, call_uuid: str, digits: str) -> None:
        response = await self._request("PUT", f"/{call_uuid}/dtmf", {"digits": digits})
        if response.status_code not in (200, 204):
            raise CarrierError(f"Vonage did not send the digits {_refusal(response)}")

    async def status(self, call_uuid: str) -> str | None:
        """The call's ``status`` (``GET /v1/calls/{uuid}``); None if Vonage has no such call."""
        response = await self._request("GET", f"/{call_uuid}", None)
        if response.status_code == 404:
            return None
        status = _json(response).get("status")
        if response.status_code != 200 or not isinstance(status, str):
            raise CarrierError(f"Vonage did not say how the call is {_refusal(response)}")
        return status

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        try:
            return await self._client.request(
                method,
                self._base + path,
                json=body,
                headers={"Authorization": f"Bearer {self._jwt()}"},
            )
        except httpx.HTTPError as exc:
            raise CarrierError(f"Vonage unreachable: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


class VonageCarrier:
    name = "vonage"

    def __init__(self, api: VonageApi, *, public_url: str, store: CallStore) -> None:
        if not public_url:
            raise CarrierError("Vonage must reach us: set VOXLINE_PUBLIC_URL (https://...)")
        self.api = api
        self._public = public_url.rstrip("/")
        self._store = store

    async def place_call(
        self,
        *,
        to: str,
        from_: str,
        agent_id: str,
        call_id: str,
        context: dict[str, Any] | None = None,
    ) -> str:
        answer_url, event_url = outbound_urls(self._public, call_id)
        call_uuid = await self.api.create_call(
            {
                "to": [{"type": "phone", "number": to.lstrip("+")}],
                "from": {"type": "phone", "number": from_.lstrip("+")},
                "answer_url": [answer_url],
                "answer_method": "GET",
                "event_url": [event_url],
                "event_method": "POST",
            }
        )
        await self._store.update(call_id, carrier="vonage", carrier_call_id=call_uuid)
        await self._store.set_status(call_id, CallStatus.QUEUED)
        log.info("call %s: Vonage call %s to %s", call_id, call_uuid, to)
        return call_uuid

    async def cancel(self, call_id: str) -> bool:
        record = await self._store.get(call_id)
        call_uuid = record.carrier_call_id if record is not None else None
        if not call_uuid:
            return False
        try:
            return await self.api.hang_up(call_uuid)
        except CarrierError as exc:
            log.warning("call %s: could not cancel Vonage call %s: %s", call_id, call_uuid, exc)
            return False

    async def transfer(self, call_id: str, to: str) -> None:
        """A new NCCO on the call: ``connect`` to ``to``, our number as the caller id."""
        record = await self._store.get(call_id)
        if record is None or not record.carrier_call_id:
            raise CarrierError(f"call {call_id} has no Vonage call uuid")
        ours = record.to_number if record.direction == Direction.INBOUND else record.from_number
        await self.api.transfer(record.carrier_call_id, connect_ncco(to, ours))
        log.info("call %s: Vonage call %s transferred to %s", call_id, record.carrier_call_id, to)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        record = await self._store.get(call_id)
        if record is None or not record.carrier_call_id:
            raise CarrierError(f"call {call_id} has no Vonage call uuid")
        await self.api.send_dtmf(record.carrier_call_id, vonage_digits(digits))

    async def call_status(self, call_id: str) -> CallStatus | None:
        record = await self._store.get(call_id)
        call_uuid = record.carrier_call_id if record is not None else None
        if not call_uuid:
            return None
        said = await self.api.status(call_uuid)
        if said is None:
            return None
        if said not in CALL_STATUS:
            raise CarrierError(f"Vonage call {call_uuid} has an unknown status {said[:40]!r}")
        return CALL_STATUS[said]

    async def aclose(self) -> None:
        """Nothing of its own: the REST client is the dialect's (it hangs calls up too)."""


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(response: httpx.Response) -> str:
    body = _json(response)
    return f"({response.status_code}): {body.get('title') or response.text[:200]}"
