"""Carrier actions on a call in progress: hand the caller to someone else, press keys.

The control plane (``POST /calls/{id}/transfer``, ``/dtmf``) and the agent's
``transfer_call`` tool both reach the call's carrier through ``CarrierActions``,
which finds the carrier by the call record's ``carrier`` name. A carrier that
can do an action implements its method (``TransferringCarrier``,
``DtmfCarrier``); one that cannot is refused with a ``CarrierError`` naming it, and
saying why where the reason is known (``WHY_NOT``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from gateway.calls import CallStore
from gateway.carriers import CarrierError
from voice_core.dialing import check_dtmf_digits, check_transfer_target


@runtime_checkable
class TransferringCarrier(Protocol):
    name: str

    async def transfer(self, call_id: str, to: str) -> None:
        """Move the call's caller to ``to`` (E.164 or SIP URI); our media leg ends after.
        Raises ``CarrierError`` if the carrier refused: the call goes on as it was."""
        ...


@runtime_checkable
class DtmfCarrier(Protocol):
    name: str

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """Play ``digits`` (0-9 * # w W) into the call, as if the agent pressed them."""
        ...


# Carriers and PBX transports without a documented way to do an action, and why (the
# API's 409 says it, so an operator knows it is the carrier, not a setting).
WHY_NOT: dict[tuple[str, str], str] = {
    ("twilio", "dtmf"): (
        "Twilio plays digits only as TwiML (<Play digits>), and new TwiML ends the "
        "call's <Connect><Stream>: reconnecting would open a second media stream and "
        "engine session mid-call (a gap, a split transcript), so it is not done"
    ),
    ("exotel", "transfer"): (
        "Exotel has no API to move a live call: the Voicebot applet's flow decides what "
        "follows the stream (end the stream and let a Connect applet take the call)"
    ),
    ("exotel", "dtmf"): "Exotel's Voicebot stream has no message that plays digits",
    ("freeswitch", "transfer"): (
        "mod_audio_fork has no call control: transfer from the dialplan or the event socket"
    ),
    ("freeswitch", "dtmf"): "mod_audio_fork has no message that plays digits",
    ("jambonz", "transfer"): "the listen verb has no call control: use jambonz's own REST API",
    ("jambonz", "dtmf"): "the listen verb has no message that plays digits",
}


class UnsupportedAction(CarrierError):
    """The call's carrier has no such action (the API answers 409, not 502)."""


class CarrierActions:
    """Actions on live calls, routed to the carrier each call's record names."""

    def __init__(self, store: CallStore, carriers: Iterable[object]) -> None:
        self._store = store
        self._carriers = {getattr(c, "name", ""): c for c in carriers}

    def add(self, carrier: object) -> None:
        self._carriers[getattr(carrier, "name", "")] = carrier

    async def _carrier_of(self, call_id: str) -> tuple[str, object | None]:
        record = await self._store.get(call_id)
        name = record.carrier if record is not None else ""
        return name, self._carriers.get(name)

    async def transfer(self, call_id: str, to: str) -> None:
        check_transfer_target(to)
        name, carrier = await self._carrier_of(call_id)
        if not isinstance(carrier, TransferringCarrier):
            raise _unsupported(name, "transfer", "cannot transfer calls")
        await carrier.transfer(call_id, to)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        check_dtmf_digits(digits)
        name, carrier = await self._carrier_of(call_id)
        if not isinstance(carrier, DtmfCarrier):
            raise _unsupported(name, "dtmf", "cannot send DTMF")
        await carrier.send_dtmf(call_id, digits)


def _unsupported(name: str, action: str, what: str) -> UnsupportedAction:
    why = WHY_NOT.get((name, action))
    text = f"carrier {name or 'of this call'!r} {what}"
    return UnsupportedAction(f"{text}: {why}" if why else text)
