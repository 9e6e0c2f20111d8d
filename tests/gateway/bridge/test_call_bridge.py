"""The shared call bridge with a fake engine session and a fake transport: milliseconds,
no models, no sockets. The real transports are covered end to end in twilio/ and webrtc/."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from gateway.bridge import CallBridge, CallRegistry, TransportGateway
from gateway.calls import CallRecord, CallStatus, Direction, InMemoryCallStore
from voice_core.end_reasons import CallEnd, EndReason
from voice_core.events import (
    AgentAudio,
    AgentUtteranceEnd,
    CallEnded,
    ClearAudio,
    SessionEvent,
    TranscriptFinal,
)

log = logging.getLogger("tests.bridge")
FRAME = np.zeros(320, dtype=np.int16)


class FakeSession:
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.queue: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self.end_reason: str | None = None
        self.started_at = 0.0
        self.transcript: list[Any] = []
        self.turn_metrics: list[Any] = []

    async def start(self) -> None:
        return None

    def emit(self, event: SessionEvent) -> None:
        self.queue.put_nowait(event)

    async def events(self) -> AsyncIterator[SessionEvent]:
        while True:
            event = await self.queue.get()
            yield event
            if isinstance(event, CallEnded):
                return

    async def hangup(self, reason: str = "caller_hangup") -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self.emit(CallEnded(reason))


class FakeEngine:
    def __init__(self) -> None:
        self.sessions: list[FakeSession] = []

    def new_session(self, agent: Any, *, call_id: str, context: dict[str, Any]) -> FakeSession:
        self.sessions.append(FakeSession(call_id))
        return self.sessions[-1]


@dataclass(kw_only=True)
class FakeGateway(TransportGateway):
    transport: ClassVar[str] = "fake"
    error_tag: ClassVar[str] = "fake"


@dataclass(kw_only=True)
class OtherGateway(TransportGateway):
    transport: ClassVar[str] = "other"
    error_tag: ClassVar[str] = "other"


class FakeLine:
    """A MediaSink and CallTransport that writes down what it is told."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.played = asyncio.Event()
        self.queued = 0.0

    async def play(self, pcm: np.ndarray) -> None:
        self.log.append("play")

    async def clear(self) -> None:
        self.log.append("clear")

    async def end_utterance(self, utterance_id: int) -> None:
        self.log.append(f"mark {utterance_id}")

    @property
    def queued_s(self) -> float:
        return self.queued

    async def wait_for_playout(self) -> None:
        await self.played.wait()

    async def stop_media(self, end: CallEnd) -> None:
        self.log.append(f"stop {end}")

    async def close(self, end: CallEnd) -> None:
        self.log.append(f"close {end}")


def make(
    tmp_path: Path, calls: CallRegistry | None = None, **kw: Any
) -> tuple[FakeGateway, CallBridge, FakeLine]:
    gw = FakeGateway(
        engine=FakeEngine(),  # type: ignore[arg-type]
        store=InMemoryCallStore(),
        recordings_dir=tmp_path,
        calls=calls if calls is not None else CallRegistry(),
        **{"drain_timeout_s": 2.0, "hangup_wait_s": 2.0, **kw},
    )
    line = FakeLine()
    return gw, CallBridge(gw, line, log=log), line


async def start(gw: FakeGateway, bridge: CallBridge, call_id: str = "c1") -> FakeSession:
    await gw.store.create(CallRecord(id=call_id, agent_id="a", direction=Direction.INBOUND))
    bridge.register(call_id)
    await bridge.start_session(None, {})  # type: ignore[arg-type]
    session = bridge.session
    assert isinstance(session, FakeSession)
    return session


def serve(bridge: CallBridge, line: FakeLine) -> Any:
    async def run() -> None:
        pump = asyncio.create_task(bridge.pump(line))
        await bridge.over.wait()
        pump.cancel()

    return run


async def test_engine_events_reach_the_sink_and_the_goodbye_plays_before_teardown(
    tmp_path: Path,
) -> None:
    gw, bridge, line = make(tmp_path)
    seen: list[SessionEvent] = []
    gw.observers.append(lambda call_id, event: seen.append(event))
    session = await start(gw, bridge)
    assert gw.active == {"c1": bridge} and len(gw.calls) == 1
    runner = asyncio.create_task(bridge.run(serve(bridge, line)))
    for event in (
        AgentAudio(FRAME, 1),
        ClearAudio(1),
        AgentUtteranceEnd(1, "cut", interrupted=True),  # a cut utterance gets no mark
        AgentAudio(FRAME, 2),
        AgentUtteranceEnd(2, "goodbye", interrupted=False),
        TranscriptFinal("bye", 1),
        CallEnded("agent_ended"),
    ):
        session.emit(event)
    await asyncio.sleep(0.05)
    # The engine's reason is kept at once, but the call waits for the goodbye to play.
    assert bridge.end == CallEnd(EndReason.AGENT_ENDED) and not bridge.over.is_set()
    bridge.end_with(EndReason.CALLER_HANGUP)  # the caller leaves meanwhile: too late
    line.played.set()
    await asyncio.wait_for(runner, 2)
    assert line.log == [
        "play",
        "clear",
        "play",
        "mark 2",
        "stop agent_ended",
        "close agent_ended",
    ]
    assert len(seen) == 7
    record = await gw.store.get("c1")
    assert record is not None
    assert record.status == CallStatus.COMPLETED and record.end_reason == "agent_ended"
    assert record.recording_path == str(tmp_path / "c1.wav")
    assert not gw.active and len(gw.calls) == 0


async def test_the_first_reason_wins_and_an_engine_error_fails_the_call(tmp_path: Path) -> None:
    gw, bridge, line = make(tmp_path, drain_timeout_s=0.01)
    session = await start(gw, bridge)
    runner = asyncio.create_task(bridge.run(serve(bridge, line)))
    session.emit(CallEnded("error:llm:RuntimeError"))
    await asyncio.wait_for(runner, 2)
    bridge.end_with(EndReason.CALLER_HANGUP)
    record = await gw.store.get("c1")
    assert record is not None and record.status == CallStatus.FAILED
    assert record.end_reason == "error:llm:RuntimeError"


async def test_a_bug_in_the_transport_ends_only_its_call_with_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gw, bridge, _ = make(tmp_path)
    await start(gw, bridge)

    async def broken() -> None:
        raise KeyError("bug")

    await bridge.run(broken)
    record = await gw.store.get("c1")
    assert record is not None and record.status == CallStatus.FAILED
    assert record.end_reason == "error:fake:KeyError"
    assert "call c1 ended (failed): error:fake:KeyError" in caplog.text


async def test_the_transport_reason_replaces_a_carriers_but_no_other(tmp_path: Path) -> None:
    for earlier, kept in (("carrier:completed", "caller_hangup"), ("api_hangup", "api_hangup")):
        gw, bridge, line = make(tmp_path)
        await start(gw, bridge)
        await gw.store.update("c1", end_reason=earlier)
        bridge.end_with(EndReason.CALLER_HANGUP)
        await bridge.run(serve(bridge, line))
        record = await gw.store.get("c1")
        assert record is not None and record.end_reason == kept


async def test_a_failed_finalisation_is_logged_and_the_line_still_closes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gw, bridge, line = make(tmp_path)
    await start(gw, bridge)

    async def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database gone")

    gw.store.update = refuse  # type: ignore[method-assign]
    bridge.end_with(EndReason.CALLER_HANGUP)
    await bridge.run(serve(bridge, line))
    assert "finalizing the call record failed" in caplog.text
    assert line.log[-1] == "close caller_hangup"
    await bridge.wait_finished(0.1)  # finished all the same: a hang-up never hangs


async def test_a_call_that_never_identified_itself_leaves_a_record_of_the_attempt(
    tmp_path: Path,
) -> None:
    gw, bridge, line = make(tmp_path)
    await bridge.hangup("server_shutdown")  # no session: the line closes at once...
    assert line.log == ["close server_shutdown"]
    await bridge.run(serve(bridge, line))  # ...and the run finishes the record
    [record] = await gw.store.list()
    assert record.id == bridge.call_id and record.agent_id is None
    assert record.status == CallStatus.COMPLETED and record.end_reason == "server_shutdown"
    assert record.recording_path is None  # no session, no recording


async def test_one_registry_counts_and_hangs_up_calls_across_transports(tmp_path: Path) -> None:
    calls = CallRegistry()
    gw_a, a, line_a = make(tmp_path, calls)
    gw_b = OtherGateway(
        engine=FakeEngine(),  # type: ignore[arg-type]
        store=gw_a.store,
        recordings_dir=tmp_path,
        calls=calls,
        drain_timeout_s=0.01,
    )
    line_b = FakeLine()
    b = CallBridge(gw_b, line_b, log=log)
    await start(gw_a, a, "ca")
    await start(gw_b, b, "cb")  # type: ignore[arg-type]
    runs = [asyncio.create_task(x.run(serve(x, y))) for x, y in ((a, line_a), (b, line_b))]
    assert len(calls) == 2 and calls.count("fake") == 1 and set(gw_b.active) == {"cb"}
    assert await calls.hangup("cb", "api_hangup") and not await calls.hangup("nope", "x")
    assert calls.count() == 1
    await calls.hangup_all("server_shutdown")
    await asyncio.gather(*runs)
    assert len(calls) == 0
    ended = {r.id: (r.status, r.end_reason) for r in await gw_a.store.list()}
    assert ended == {
        "ca": (CallStatus.COMPLETED, "server_shutdown"),
        "cb": (CallStatus.COMPLETED, "api_hangup"),
    }


async def test_what_the_line_lost_reordered_and_repeated_reaches_the_call_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gw, bridge, line = make(tmp_path)
    stats = {"frames_lost": 3, "frames_reordered": 1, "frames_duplicated": 2}
    line.media_stats = stats  # type: ignore[attr-defined]
    await start(gw, bridge)
    bridge.end_with(EndReason.CALLER_HANGUP)
    await bridge.run(serve(bridge, line))
    record = await gw.store.get("c1")
    assert record is not None and record.media_stats == stats
    assert record.status == CallStatus.COMPLETED and record.end_reason == "caller_hangup"

    # A store that keeps no such field loses only the counters (and says so), not the call.
    gw, bridge, line = make(tmp_path)
    line.media_stats = stats  # type: ignore[attr-defined]
    await start(gw, bridge)
    real_update = gw.store.update

    async def no_media_stats(call_id: str, **fields: Any) -> CallRecord:
        if "media_stats" in fields:
            raise AttributeError("CallRecord field(s) ['media_stats'] cannot be updated")
        return await real_update(call_id, **fields)

    gw.store.update = no_media_stats  # type: ignore[method-assign]
    bridge.end_with(EndReason.CALLER_HANGUP)
    await bridge.run(serve(bridge, line))
    record = await gw.store.get("c1")
    assert record is not None and record.media_stats == {}
    assert record.status == CallStatus.COMPLETED and record.end_reason == "caller_hangup"
    assert "keeps no media_stats" in caplog.text
