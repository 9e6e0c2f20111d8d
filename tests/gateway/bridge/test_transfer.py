"""Transfers through the shared call bridge: the agent's transfer_call reaches the call's
carrier; the record ends transferred; a refused transfer leaves the call going."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.bridge import CallBridge, CallRegistry
from gateway.calls import CallStatus
from gateway.carriers import CarrierError
from gateway.transfer import CarrierActions, UnsupportedAction
from tests.gateway.bridge.test_call_bridge import FakeLine, FakeSession, make, serve, start
from voice_core.end_reasons import EndReason
from voice_core.events import DtmfRequested, TransferRequested
from voice_core.session import TranscriptEntry


class BriefingSession(FakeSession):
    """FakeSession that can say a line and keep a note, as CallSession does."""

    said: list[str]

    async def say(self, text: str) -> None:
        self.said = [*getattr(self, "said", []), text]
        self.transcript.append(TranscriptEntry("agent", text, 1.0))

    def note(self, text: str) -> None:
        self.transcript.append(TranscriptEntry("system", text, 2.0))


class FakeCarrier:
    """Moves calls; optionally refuses, or sends the stream stop before answering."""

    name = "fake"

    def __init__(self, bridge: CallBridge, *, refuse: bool = False, stop_first: bool = False):
        self.bridge = bridge
        self.refuse = refuse
        self.stop_first = stop_first
        self.transfers: list[tuple[str, str]] = []
        self.said_before: list[str] = []

    async def transfer(self, call_id: str, to: str) -> None:
        session = self.bridge.session
        self.said_before = list(getattr(session, "said", []))
        if self.refuse:
            raise CarrierError("(400, code 21220): Call is not in-progress")
        if self.stop_first:  # the carrier's stream stop beats its HTTP answer
            self.bridge.end_with(EndReason.CALLER_HANGUP)
        self.transfers.append((call_id, to))


@dataclass
class Call:
    gw: Any
    bridge: CallBridge
    line: FakeLine
    session: BriefingSession
    carrier: FakeCarrier
    runner: asyncio.Task[None]


async def _call(tmp_path: Path, **carrier_kw: bool) -> Call:
    calls = CallRegistry()
    gw, bridge, line = make(tmp_path, calls=calls, drain_timeout_s=0.05)
    gw.engine.new_session = lambda agent, *, call_id, context: BriefingSession(call_id)  # type: ignore[method-assign]
    session = await start(gw, bridge)
    await gw.store.update("c1", carrier="fake")
    carrier = FakeCarrier(bridge, **carrier_kw)
    calls.actions = CarrierActions(gw.store, [carrier])
    runner = asyncio.create_task(bridge.run(serve(bridge, line)))
    return Call(gw, bridge, line, session, carrier, runner)


async def test_the_agents_warm_transfer_briefs_moves_and_ends_the_call(tmp_path: Path) -> None:
    c = await _call(tmp_path)
    gw = c.gw
    line = c.line
    session = c.session
    carrier = c.carrier
    runner = c.runner
    session.emit(TransferRequested("billing", "+15550199000", "warm", "One moment please."))
    line.played.set()
    await asyncio.wait_for(runner, 2)
    assert carrier.transfers == [("c1", "+15550199000")]
    assert carrier.said_before == ["One moment please."]  # briefed, then handed over
    record = await gw.store.get("c1")
    assert record is not None and record.status == CallStatus.COMPLETED
    assert record.end_reason == "transferred:+15550199000"
    assert [(e["speaker"], e["text"]) for e in record.transcript] == [
        ("agent", "One moment please."),
        ("system", "transferred to +15550199000 (warm)"),
    ]


async def test_the_carriers_stream_stop_during_the_hand_over_reads_as_the_transfer(
    tmp_path: Path,
) -> None:
    c = await _call(tmp_path, stop_first=True)
    gw = c.gw
    bridge = c.bridge
    carrier = c.carrier
    runner = c.runner
    await bridge.transfer("sip:desk@pbx.example.test", lambda: carrier.transfer("c1", "x"))
    await asyncio.wait_for(runner, 2)
    record = await gw.store.get("c1")
    assert record is not None and record.end_reason == "transferred:sip:desk@pbx.example.test"


async def test_a_refused_transfer_leaves_the_call_going(tmp_path: Path) -> None:
    c = await _call(tmp_path, refuse=True)
    gw = c.gw
    bridge = c.bridge
    session = c.session
    runner = c.runner
    session.emit(TransferRequested("billing", "+15550199000", "cold"))
    await asyncio.sleep(0.1)
    assert not bridge.ended and not runner.done()
    record = await gw.store.get("c1")
    assert record is not None and record.status == CallStatus.IN_PROGRESS
    await bridge.hangup(EndReason.API_HANGUP)
    await asyncio.wait_for(runner, 2)
    record = await gw.store.get("c1")
    assert record is not None and record.end_reason == "api_hangup"


async def test_a_carrier_without_transfer_is_refused_by_name(tmp_path: Path) -> None:
    c = await _call(tmp_path)
    gw = c.gw
    bridge = c.bridge
    runner = c.runner
    await gw.store.update("c1", carrier="exotel")
    actions = gw.calls.actions
    assert actions is not None
    with pytest.raises(UnsupportedAction, match="'exotel' cannot transfer"):
        await bridge.transfer("+15550199000", lambda: actions.transfer("c1", "+15550199000"))
    with pytest.raises(UnsupportedAction, match="'exotel' cannot send DTMF"):
        await actions.send_dtmf("c1", "123")
    assert not bridge.ended
    await bridge.hangup(EndReason.API_HANGUP)
    await asyncio.wait_for(runner, 2)


async def test_the_agents_keys_reach_the_carrier(tmp_path: Path) -> None:
    c = await _call(tmp_path)
    sent: list[tuple[str, str]] = []

    async def send_dtmf(call_id: str, digits: str) -> None:
        sent.append((call_id, digits))

    c.carrier.send_dtmf = send_dtmf  # type: ignore[attr-defined]
    c.session.emit(DtmfRequested("9w1"))
    await asyncio.sleep(0.05)
    assert sent == [("c1", "9w1")]
    assert not c.bridge.ended  # pressing keys does not end the call
    await c.bridge.hangup(EndReason.API_HANGUP)
    await asyncio.wait_for(c.runner, 2)
