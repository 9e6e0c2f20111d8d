"""Carrier actions on a call in progress: hand the caller to someone else, press keys.

The control plane (``POST /calls/{id}/transfer``, ``/dtmf``) and the agent's
``transfer_call`` tool both reach the call's carrier through ``CarrierActions``,
which finds the carrier by the call record's ``carrier`` name. A carrier that
can do an action implements its method (``TransferringCarrier``,
``DtmfCarrier``); one that cannot is refused with a ``CarrierError`` naming it.
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
            raise UnsupportedAction(f"carrier {name or 'of this call'!r} cannot transfer calls")
        await carrier.transfer(call_id, to)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        check_dtmf_digits(digits)
        name, carrier = await self._carrier_of(call_id)
        if not isinstance(carrier, DtmfCarrier):
            raise UnsupportedAction(f"carrier {name or 'of this call'!r} cannot send DTMF")
        await carrier.send_dtmf(call_id, digits)
