"""Outbound calls and hang-ups through Plivo's REST API.

HTTP Basic auth ``auth_id:auth_token``, JSON bodies, under ``{base}/v1/Account/{auth_id}``:

- ``POST /Call/`` with ``from``, ``to``, ``answer_url`` (+ ``answer_method``),
  ``hangup_url`` (+ method) and ``ring_timeout``; Plivo answers 201
  ``{"message": "call fired", "request_uuid": ...}``. The call's own ``CallUUID``
  arrives with the answer webhook, which replaces the request id on the record.
- ``DELETE /Request/{request_uuid}/`` cancels a call still ringing;
  ``DELETE /Call/{call_uuid}/`` hangs up a live one (204; 404 once it has ended);
- ``POST /Call/{call_uuid}/`` with ``legs=aleg``, ``aleg_url`` (+ ``aleg_method``)
  transfers a live call: Plivo fetches new XML from that URL (ours answers a
  ``<Dial>`` to the target, ``/plivo/transfer``) and the call's stream ends (202);
- ``POST /Call/{call_uuid}/DTMF/`` with ``digits`` (+ ``leg``) plays keys into the
  call (202).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import httpx

from gateway.calls import CallStatus, CallStore
from gateway.carriers import CarrierError

log = logging.getLogger(__name__)


def transfer_url(base: str, call_id: str, to: str) -> str:
    """Where Plivo fetches the XML that moves the call to ``to`` (a signed webhook; the
    target rides in the URL the signature covers)."""
    return f"{base}/plivo/transfer?{urlencode({'call_id': call_id, 'to': to})}"


def outbound_urls(base: str, call_id: str) -> tuple[str, str]:
    """(answer URL, hangup URL) of a call we place."""
    query = urlencode({"call_id": call_id})
    return f"{base}/plivo/answer?{query}", f"{base}/plivo/hangup?{query}"


class PlivoApi:
    def __init__(
        self,
        auth_id: str,
        auth_token: str,
        *,
        api_base: str = "https://api.plivo.com",
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._auth = (auth_id, auth_token)
        self._base = f"{api_base.rstrip('/')}/v1/Account/{auth_id}"
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None

    async def create_call(self, body: dict[str, Any]) -> str:
        response = await self._request("POST", "/Call/", body)
        data = _json(response)
        if response.status_code != 201:
            raise CarrierError(f"Plivo refused the call {_refusal(response)}")
        request_uuid = data.get("request_uuid")
        if isinstance(request_uuid, list):  # one per destination; we dial one
            request_uuid = request_uuid[0] if request_uuid else None
        if not isinstance(request_uuid, str) or not request_uuid:
            raise CarrierError("Plivo answered 201 without a request_uuid")
        return request_uuid

    async def hang_up(self, call_uuid: str) -> bool:
        """True if Plivo hung the call up; False if it had already ended."""
        return await self._delete(f"/Call/{call_uuid}/")

    async def cancel_request(self, request_uuid: str) -> bool:
        return await self._delete(f"/Request/{request_uuid}/")

    async def live_status(self, call_uuid: str) -> str | None:
        """``call_status`` of a live call (``GET /Call/{uuid}/?status=live``); None once
        it is not live (ended, or never existed)."""
        response = await self._request("GET", f"/Call/{call_uuid}/?status=live", None)
        if response.status_code == 404:
            return None
        status = _json(response).get("call_status")
        if response.status_code != 200 or not isinstance(status, str):
            raise CarrierError(f"Plivo did not say how the call is {_refusal(response)}")
        return status

    async def transfer(self, call_uuid: str, aleg_url: str) -> None:
        body = {"legs": "aleg", "aleg_url": aleg_url, "aleg_method": "POST"}
        response = await self._request("POST", f"/Call/{call_uuid}/", body)
        if response.status_code not in (200, 202):
            raise CarrierError(f"Plivo did not transfer call {call_uuid} {_refusal(response)}")

    async def send_digits(self, call_uuid: str, digits: str) -> None:
        # Plivo plays 0-9 * # and waits on w (0.5 s) and W (1 s), as we write them.
        body = {"digits": digits, "leg": "aleg"}
        response = await self._request("POST", f"/Call/{call_uuid}/DTMF/", body)
        if response.status_code not in (200, 202):
            raise CarrierError(f"Plivo did not send the digits {_refusal(response)}")

    async def _delete(self, path: str) -> bool:
        response = await self._request("DELETE", path, None)
        if response.status_code == 204:
            return True
        if response.status_code == 404:
            return False
        raise CarrierError(f"Plivo refused DELETE {path} {_refusal(response)}")

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        try:
            return await self._client.request(method, self._base + path, json=body, auth=self._auth)
        except httpx.HTTPError as exc:
            raise CarrierError(f"Plivo unreachable: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


class PlivoCarrier:
    name = "plivo"

    def __init__(
        self, api: PlivoApi, *, public_url: str, store: CallStore, ring_timeout_s: int = 45
    ) -> None:
        if not public_url:
            raise CarrierError("Plivo must reach us: set VOXLINE_PUBLIC_URL (https://...)")
        self.api = api
        self._public = public_url.rstrip("/")
        self._store = store
        self._ring_timeout_s = ring_timeout_s

    async def place_call(
        self,
        *,
        to: str,
        from_: str,
        agent_id: str,
        call_id: str,
        context: dict[str, Any] | None = None,
    ) -> str:
        answer_url, hangup_url = outbound_urls(self._public, call_id)
        request_uuid = await self.api.create_call(
            {
                "from": from_,
                "to": to,
                "answer_url": answer_url,
                "answer_method": "POST",
                "hangup_url": hangup_url,
                "hangup_method": "POST",
                "ring_timeout": self._ring_timeout_s,
            }
        )
        await self._store.update(call_id, carrier="plivo", carrier_call_id=request_uuid)
        await self._store.set_status(call_id, CallStatus.QUEUED)
        log.info("call %s: Plivo request %s to %s", call_id, request_uuid, to)
        return request_uuid

    async def cancel(self, call_id: str) -> bool:
        record = await self._store.get(call_id)
        carrier_id = record.carrier_call_id if record is not None else None
        if not carrier_id:
            return False
        try:
            # Still ringing: the request id; answered: the call's own id.
            return await self.api.cancel_request(carrier_id) or await self.api.hang_up(carrier_id)
        except CarrierError as exc:
            log.warning("call %s: could not cancel Plivo call %s: %s", call_id, carrier_id, exc)
            return False

    async def transfer(self, call_id: str, to: str) -> None:
        """Transfer API: Plivo fetches ``<Dial>`` to ``to`` from us and moves the caller."""
        call_uuid = await self._call_uuid(call_id)
        await self.api.transfer(call_uuid, transfer_url(self._public, call_id, to))
        log.info("call %s: Plivo call %s transferred to %s", call_id, call_uuid, to)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        await self.api.send_digits(await self._call_uuid(call_id), digits)

    async def _call_uuid(self, call_id: str) -> str:
        """The answered call's ``CallUUID`` (the answer webhook put it on the record)."""
        record = await self._store.get(call_id)
        if record is None or not record.carrier_call_id:
            raise CarrierError(f"call {call_id} has no Plivo CallUUID")
        return record.carrier_call_id

    async def call_status(self, call_id: str) -> CallStatus | None:
        """A live call's status from Plivo; one no longer live is over (the record's final
        status, else completed: its detailed outcome is in Plivo's CDR, not read here)."""
        record = await self._store.get(call_id)
        carrier_id = record.carrier_call_id if record is not None else None
        if record is None or not carrier_id:
            return None
        said = await self.api.live_status(carrier_id)
        if said == "ringing":
            return CallStatus.RINGING
        if said is not None:
            return CallStatus.IN_PROGRESS
        return record.status if record.status.final else CallStatus.COMPLETED

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
    return f"({response.status_code}): {body.get('error') or response.text[:200]}"
