"""Sans-I/O pieces of live monitoring: event shapes, subscriber queues, SSE parsing."""

from __future__ import annotations

import asyncio

from api.live import events as live_events
from api.live.feed import LiveHub, Subscription
from gateway.calls import CallRecord, CallStatus, Direction
from voice_core.events import (
    AgentAudio,
    AgentReply,
    AgentTextDelta,
    AgentUtteranceEnd,
    CallEnded,
    TranscriptFinal,
    TranscriptPartial,
    TurnMetrics,
)
from voxline.sse import SSEParser


def test_engine_events_become_live_events() -> None:
    enc = live_events.CallEvents("call_1")
    import numpy as np

    out = []
    for event in (
        TranscriptPartial("can I"),
        TranscriptFinal("can I book", turn=1),
        AgentTextDelta("Sure", turn=1),
        AgentAudio(np.zeros(320, dtype=np.int16), 1),
        AgentAudio(np.zeros(320, dtype=np.int16), 1),
        AgentUtteranceEnd(1, "Sure.", False),
        AgentReply("Sure.", turn=1, interrupted=False),
        TurnMetrics(
            1, {"speech_end": 10.0, "endpoint": 10.5, "first_audio_out": 11.0}, {"response": 500.0}
        ),
        CallEnded("caller_hangup"),
    ):
        out.extend(enc.encode(event, now=1.0))
    kinds = [(e["type"], e.get("state") or e.get("role")) for e in out]
    assert kinds == [
        ("transcript", "user"),
        ("transcript", "user"),
        ("call.state", "thinking"),
        ("agent.text", None),
        ("call.state", "speaking"),
        ("call.state", "listening"),
        ("transcript", "agent"),
        ("turn.latency", None),
        ("call.state", "ended"),
    ]
    assert out[1] == {
        "type": "transcript",
        "ts": 1.0,
        "call_id": "call_1",
        "role": "user",
        "final": True,
        "text": "can I book",
        "turn": 1,
    }
    latency = out[7]
    assert latency["marks_ms"] == {"speech_end": 0.0, "endpoint": 500.0, "first_audio_out": 1000.0}
    assert latency["stages_ms"] == {"response": 500.0}


def test_status_changes_and_the_end() -> None:
    record = CallRecord(
        id="call_2",
        agent_id="agt",
        direction=Direction.OUTBOUND,
        to_number="+1555",
        status=CallStatus.COMPLETED,
        answered_at=100.0,
        ended_at=112.5,
        status_history=[("queued", 1), ("in_progress", 2), ("completed", 3)],
        end_reason="caller_hangup",
    )
    status, ended = live_events.call_status(record)
    assert status["type"] == "call.status" and status["status"] == "completed"
    assert status["previous"] == "in_progress"
    assert ended["type"] == "call.ended" and ended["duration_s"] == 12.5
    assert ended["end_reason"] == "caller_hangup"


async def test_a_slow_subscriber_is_dropped_not_waited_for() -> None:
    hub = LiveHub(sessions=None, queue_size=10)  # type: ignore[arg-type]
    slow = hub.subscribe("org_a")
    fast = hub.subscribe("org_a")
    other = hub.subscribe("org_b")
    got = []
    for i in range(25):
        hub.publish("org_a", {"type": "transcript", "ts": 0, "call_id": "c", "text": str(i)})
        while not fast._queue.empty():
            got.append(await fast.get())
    assert len(got) == 25
    assert slow.dropped and "more than 10 events behind" in slow.dropped
    assert await slow.get() is None
    assert hub.subscriber_count() == 2  # the dropped one is gone; org_b's saw nothing
    assert other._queue.empty()


async def test_subscription_filters() -> None:
    sub = Subscription("o", 10, call_id="c1", types=["transcript"])
    assert sub.offer({"type": "transcript", "call_id": "c2"})
    assert sub.offer({"type": "call.status", "call_id": "c1"})
    assert sub.offer({"type": "transcript", "call_id": "c1", "text": "x"})
    assert (await asyncio.wait_for(sub.get(), 1))["text"] == "x"
    assert sub._queue.empty()


def test_sse_parser_handles_split_chunks_and_comments() -> None:
    parser = SSEParser()
    events = parser.feed("id: 1\nevent: summary\nda")
    events += parser.feed('ta: {"a": 1}\r\n\r\n: keep-alive\n\ndata: x\ndata: y\n\n')
    assert [(e.event, e.data, e.id) for e in events] == [
        ("summary", '{"a": 1}', "1"),
        ("message", "x\ny", None),
    ]
