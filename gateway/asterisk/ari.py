"""Transfer and DTMF out on Asterisk calls through ARI (the Asterisk REST Interface).

ARI acts on a channel in a Stasis application: the setup where an ARI app answers
the caller and bridges it to voxline (``externalMedia`` to chan_websocket, or an
AudioSocket channel). That app names the caller's channel to voxline as the call
parameter ``ari_channel`` (else the record's carrier call id is used), and:

- transfer: ``POST /ari/channels/{id}/variable`` sets ``VOXLINE_TRANSFER_TO`` to the
  target, then ``POST /ari/channels/{id}/continue`` sends the channel out of Stasis
  into the operator's transfer context (``exten => transfer,1,Dial(...)``, docs/pbx.md),
  where the dialplan dials it: Asterisk knows its trunks, voxline does not;
- DTMF: ``POST /ari/channels/{id}/dtmf?dtmf=...`` plays the keys into the channel.

HTTP Basic auth with an ARI user (ari.conf). ARI answers 204; 404 for a channel it
does not know, 409 for one not in Stasis: both are the carrier refusing (502).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx

from gateway.calls import CallStore
from gateway.carriers import CarrierError

log = logging.getLogger(__name__)

TRANSFER_VARIABLE = "VOXLINE_TRANSFER_TO"
TRANSFER_EXTENSION = "transfer"
# The call parameter (context) an ARI app sets to the caller's channel id.
CHANNEL_PARAM = "ari_channel"
# Asterisk channel ids: "1700000000.42" or a UUID. Anything else never reaches the URL.
_CHANNEL_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


class AriClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._base = base_url.rstrip("/") + "/ari"
        self._auth = (username, password)
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self._post(f"/channels/{channel_id}/variable", {"variable": variable, "value": value})

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int = 1
    ) -> None:
        params = {"context": context, "extension": extension, "priority": str(priority)}
        await self._post(f"/channels/{channel_id}/continue", params)

    async def send_dtmf(self, channel_id: str, digits: str) -> None:
        await self._post(f"/channels/{channel_id}/dtmf", {"dtmf": digits})

    async def _post(self, path: str, params: dict[str, str]) -> None:
        try:
            response = await self._client.post(self._base + path, params=params, auth=self._auth)
        except httpx.HTTPError as exc:
            raise CarrierError(f"Asterisk ARI unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 204:
            raise CarrierError(f"Asterisk refused POST {path} {_refusal(response)}")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


class AsteriskActions:
    """Transfer and DTMF for calls whose record names carrier ``asterisk``."""

    name = "asterisk"

    def __init__(self, ari: AriClient, *, store: CallStore, transfer_context: str) -> None:
        self.ari = ari
        self._store = store
        self._context = transfer_context

    async def transfer(self, call_id: str, to: str) -> None:
        channel = await self._channel(call_id)
        await self.ari.set_variable(channel, TRANSFER_VARIABLE, to)
        await self.ari.continue_in_dialplan(channel, self._context, TRANSFER_EXTENSION)
        log.info("call %s: Asterisk channel %s to %s: %s", call_id, channel, self._context, to)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        # Asterisk's DTMF streams wait on w (0.5 s) and W (1 s), as we write them.
        await self.ari.send_dtmf(await self._channel(call_id), digits)

    async def _channel(self, call_id: str) -> str:
        record = await self._store.get(call_id)
        if record is None:
            raise CarrierError(f"call {call_id} is unknown")
        channel = record.context.get(CHANNEL_PARAM) or record.carrier_call_id
        if not isinstance(channel, str) or not _CHANNEL_ID.fullmatch(channel):
            raise CarrierError(f"call {call_id} names no Asterisk channel ({CHANNEL_PARAM})")
        return channel

    async def aclose(self) -> None:
        await self.ari.aclose()


def _refusal(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return f"({response.status_code}): {message or response.text[:200]}"
