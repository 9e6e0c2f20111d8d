"""Telnyx Call Control v2 over REST: dial, answer with a stream, start a stream, hang up.

Every request is JSON with ``Authorization: Bearer <API key>`` to ``{base}/v2``:

- ``POST /calls`` dials (``connection_id``, ``to``, ``from``, ``webhook_url``,
  ``client_state``) and answers ``{"data": {"call_control_id", ...}}``;
- ``POST /calls/{call_control_id}/actions/{answer|streaming_start|hangup|reject}``.

The media stream is always requested in bidirectional RTP mode
(``stream_bidirectional_mode: rtp``): without it Telnyx streams one way and silently
drops every frame we send back, a call that hears the caller and never answers.
The stream token travels as ``stream_auth_token``, which Telnyx sends back in the
stream's ``connected`` frame and upgrade headers. ``client_state`` (base64, echoed on
every later webhook) carries our call id, so the webhooks of a call we dialed find
its record.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx

from gateway.calls import CallStatus, CallStore
from gateway.carriers import CarrierError

log = logging.getLogger(__name__)

# Telnyx's error code for a command on a call that has already ended.
CALL_ALREADY_ENDED = "90018"


def client_state(call_id: str) -> str:
    return base64.b64encode(call_id.encode()).decode()


def call_id_from_state(state: object) -> str | None:
    if not isinstance(state, str) or not state:
        return None
    try:
        return base64.b64decode(state, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def stream_params(stream_url: str, token: str, *, codec: str, sample_rate: int) -> dict[str, Any]:
    """The stream half of an ``answer`` / ``streaming_start`` command."""
    return {
        "stream_url": stream_url,
        "stream_track": "inbound_track",
        "stream_codec": codec,
        "stream_bidirectional_mode": "rtp",
        "stream_bidirectional_codec": codec,
        "stream_bidirectional_sampling_rate": sample_rate,
        "stream_auth_token": token,
    }


class TelnyxCallControl:
    """The few Call Control commands voxline sends."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str = "https://api.telnyx.com",
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._key = api_key
        self._base = api_base.rstrip("/") + "/v2"
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None

    async def dial(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._post("/calls", body)
        data = _json(response).get("data")
        if response.status_code not in (200, 201) or not isinstance(data, dict):
            raise CarrierError(f"Telnyx refused the call {_refusal(response)}")
        return data

    async def command(self, call_control_id: str, action: str, body: dict[str, Any]) -> None:
        """Send one command; ``CarrierError`` if Telnyx refuses it."""
        response = await self._post(f"/calls/{call_control_id}/actions/{action}", body)
        if response.status_code != 200:
            raise CarrierError(f"Telnyx refused {action} {_refusal(response)}")

    async def hang_up(self, call_control_id: str) -> bool:
        """True if Telnyx hung the call up; False if it had already ended."""
        response = await self._post(f"/calls/{call_control_id}/actions/hangup", {})
        if response.status_code == 200:
            return True
        errors = _json(response).get("errors")
        if response.status_code == 422 and isinstance(errors, list):
            if any(isinstance(e, dict) and e.get("code") == CALL_ALREADY_ENDED for e in errors):
                return False
        raise CarrierError(f"Telnyx refused hangup {_refusal(response)}")

    async def is_alive(self, call_control_id: str) -> bool | None:
        """Whether Telnyx still has the call up (``GET /calls/{id}``); None if unknown."""
        try:
            response = await self._client.get(
                f"{self._base}/calls/{call_control_id}",
                headers={"Authorization": f"Bearer {self._key}", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise CarrierError(f"Telnyx unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        data = _json(response).get("data")
        if response.status_code != 200 or not isinstance(data, dict):
            raise CarrierError(f"Telnyx did not say how the call is {_refusal(response)}")
        alive = data.get("is_alive")
        if not isinstance(alive, bool):
            raise CarrierError("Telnyx answered without is_alive")
        return alive

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return await self._client.post(
                self._base + path,
                json=body,
                headers={"Authorization": f"Bearer {self._key}", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise CarrierError(f"Telnyx unreachable: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


class TelnyxCarrier:
    """Outbound calls through Telnyx. The stream starts when the callee answers (the
    ``call.answered`` webhook), so its token is minted then, not at dial time."""

    name = "telnyx"

    def __init__(
        self,
        api: TelnyxCallControl,
        *,
        connection_id: str,
        webhook_url: str,
        store: CallStore,
        ring_timeout_s: int = 45,
    ) -> None:
        self.api = api
        self._connection_id = connection_id
        self._webhook_url = webhook_url
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
        data = await self.api.dial(
            {
                "connection_id": self._connection_id,
                "to": to,
                "from": from_,
                "webhook_url": self._webhook_url,
                "webhook_url_method": "POST",
                "client_state": client_state(call_id),
                "timeout_secs": self._ring_timeout_s,
            }
        )
        control_id = data.get("call_control_id")
        if not isinstance(control_id, str) or not control_id:
            raise CarrierError("Telnyx answered without a call_control_id")
        await self._store.update(call_id, carrier="telnyx", carrier_call_id=control_id)
        await self._store.set_status(call_id, CallStatus.QUEUED)
        log.info("call %s: Telnyx call %s to %s", call_id, control_id, to)
        return control_id

    async def cancel(self, call_id: str) -> bool:
        record = await self._store.get(call_id)
        control_id = record.carrier_call_id if record is not None else None
        if not control_id:
            return False
        try:
            return await self.api.hang_up(control_id)
        except CarrierError as exc:
            log.warning("call %s: could not cancel Telnyx call %s: %s", call_id, control_id, exc)
            return False

    async def transfer(self, call_id: str, to: str) -> None:
        """``actions/transfer``: Telnyx dials ``to`` and bridges the caller to it; our
        stream leg ends."""
        await self.api.command(await self._control_id(call_id), "transfer", {"to": to})

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """``actions/send_dtmf``: Telnyx plays the digits (w / W pause) into the call."""
        await self.api.command(await self._control_id(call_id), "send_dtmf", {"digits": digits})

    async def _control_id(self, call_id: str) -> str:
        record = await self._store.get(call_id)
        control_id = record.carrier_call_id if record is not None else None
        if not control_id:
            raise CarrierError(f"call {call_id} has no Telnyx call_control_id")
        return control_id

    async def call_status(self, call_id: str) -> CallStatus | None:
        """Telnyx says only whether a call is alive: alive is in progress (or ringing: the
        record knows which), gone is over (the record's final status, else completed)."""
        record = await self._store.get(call_id)
        control_id = record.carrier_call_id if record is not None else None
        if record is None or not control_id:
            return None
        alive = await self.api.is_alive(control_id)
        if alive is None:
            return None
        if alive:
            return record.status if record.status == CallStatus.RINGING else CallStatus.IN_PROGRESS
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
    """``(status): title - detail`` from Telnyx's ``{"errors": [{code, title, detail}]}``."""
    errors = _json(response).get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        text = f"{first.get('code', '')} {first.get('title', '')}: {first.get('detail', '')}"
    else:
        text = response.text[:200]
    return f"({response.status_code}): {text.strip()}"
