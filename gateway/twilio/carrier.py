"""Outbound calls through Twilio's REST API (Calls resource: create, update).

POST {base}/2010-04-01/Accounts/{AccountSid}/Calls.json, form-encoded, HTTP
Basic auth AccountSid:AuthToken. Twilio fetches our TwiML URL when the callee
answers and posts progress to our status callback. A call we give up before it
connects is updated with ``Status=canceled`` (POST .../Calls/{CallSid}.json),
which Twilio applies to queued and ringing calls only. Before a campaign dials a
contact again, the call's real state is fetched (GET .../Calls/{CallSid}.json).
A live call is transferred by updating it with ``Twiml=<Response><Dial>...``: Twilio
drops the media stream and dials the target.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import httpx

from gateway.calls import TWILIO_STATUS, CallStatus, CallStore
from gateway.carriers import CarrierError
from gateway.config import TransportSettings
from gateway.twilio.routes import outbound_urls
from gateway.twilio.twiml import dial

log = logging.getLogger(__name__)

STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")


class TwilioCarrier:
    name = "twilio"

    def __init__(
        self,
        settings: TransportSettings,
        *,
        public_url: str,
        store: CallStore,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not settings.twilio_account_sid or not settings.twilio_auth_token:
            raise CarrierError(
                "Twilio needs VOXLINE_TWILIO_ACCOUNT_SID and VOXLINE_TWILIO_AUTH_TOKEN"
            )
        if not public_url:
            raise CarrierError("Twilio must reach us: set VOXLINE_PUBLIC_URL (https://...)")
        self._sid = settings.twilio_account_sid
        self._token = settings.twilio_auth_token.get_secret_value()
        self._base = settings.twilio_api_base.rstrip("/")
        self._public = public_url.rstrip("/")
        self._store = store
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None

    async def place_call(
        self,
        *,
        to: str,
        from_: str,
        agent_id: str,
        call_id: str,
        context: dict[str, Any] | None = None,
    ) -> str:
        twiml_url, status_url = outbound_urls(self._public, call_id)
        form: list[tuple[str, str]] = [
            ("To", to),
            ("From", from_),
            ("Url", twiml_url),
            ("Method", "POST"),
            ("StatusCallback", status_url),
            ("StatusCallbackMethod", "POST"),
            # Repeated field: Twilio takes one StatusCallbackEvent per value.
            *[("StatusCallbackEvent", event) for event in STATUS_CALLBACK_EVENTS],
        ]
        response = await self._post("Calls.json", form)
        body = _json(response)
        if response.status_code != 201:
            raise CarrierError(f"Twilio refused the call {_refusal(response, body)}")
        sid = body.get("sid")
        if not isinstance(sid, str) or not sid:
            raise CarrierError("Twilio answered 201 without a call sid")
        await self._store.update(call_id, carrier="twilio", carrier_call_id=sid)
        status = TWILIO_STATUS.get(str(body.get("status", "queued")), CallStatus.QUEUED)
        await self._store.set_status(call_id, status)
        log.info("call %s: Twilio call %s to %s (%s)", call_id, sid, to, body.get("status"))
        return sid

    async def cancel(self, call_id: str) -> bool:
        record = await self._store.get(call_id)
        sid = record.carrier_call_id if record is not None else None
        if not sid:
            return False  # never reached Twilio
        try:
            response = await self._post(f"Calls/{sid}.json", [("Status", "canceled")])
        except CarrierError as exc:
            log.warning("call %s: could not cancel Twilio call %s: %s", call_id, sid, exc)
            return False
        if response.status_code != 200:
            why = _refusal(response, _json(response))
            log.warning("call %s: Twilio did not cancel call %s %s", call_id, sid, why)
            return False
        log.info("call %s: Twilio call %s cancelled", call_id, sid)
        return True

    async def transfer(self, call_id: str, to: str) -> None:
        record = await self._store.get(call_id)
        sid = record.carrier_call_id if record is not None else None
        if not sid:
            raise CarrierError(f"call {call_id} has no Twilio call sid")
        response = await self._post(f"Calls/{sid}.json", [("Twiml", dial(to))])
        if response.status_code != 200:
            why = _refusal(response, _json(response))
            raise CarrierError(f"Twilio did not transfer call {sid} {why}")
        log.info("call %s: Twilio call %s transferred to %s", call_id, sid, to)

    async def call_status(self, call_id: str) -> CallStatus | None:
        record = await self._store.get(call_id)
        sid = record.carrier_call_id if record is not None else None
        if not sid:
            return None  # never reached Twilio
        url = f"{self._base}/2010-04-01/Accounts/{self._sid}/Calls/{sid}.json"
        try:
            response = await self._client.get(url, auth=(self._sid, self._token))
        except httpx.HTTPError as exc:
            raise CarrierError(f"Twilio unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        body = _json(response)
        if response.status_code != 200:
            raise CarrierError(f"Twilio did not say how call {sid} is {_refusal(response, body)}")
        said = str(body.get("status", ""))
        if said not in TWILIO_STATUS:
            raise CarrierError(f"Twilio call {sid} has an unknown status {said[:40]!r}")
        return TWILIO_STATUS[said]

    async def _post(self, resource: str, form: list[tuple[str, str]]) -> httpx.Response:
        url = f"{self._base}/2010-04-01/Accounts/{self._sid}/{resource}"
        try:
            return await self._client.post(
                url,
                content=urlencode(form),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                auth=(self._sid, self._token),
            )
        except httpx.HTTPError as exc:
            raise CarrierError(f"Twilio unreachable: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _refusal(response: httpx.Response, body: dict[str, Any]) -> str:
    """``(status, code N): message`` from Twilio's error body {code, message, more_info}."""
    message = body.get("message") or response.text[:200]
    code = body.get("code")
    return f"({response.status_code}" + (f", code {code}" if code else "") + f"): {message}"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
