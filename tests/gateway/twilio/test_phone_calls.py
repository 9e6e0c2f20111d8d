"""Phone calls end to end: a caller on a real WebSocket, the real server and real models."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import wave
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from gateway.calls import CallRecord, CallStatus, Direction
from gateway.simulated.callee import CalleeLine, SimulatedCallee, synthesize, to_mulaw_frames
from gateway.simulated.carrier import SimulatedContact
from gateway.twilio.media_stream_client import CarrierStream
from tests.gateway.conftest import (
    QUICK_AGENT_ID,
    QUICK_WELCOME,
    TALKER_AGENT_ID,
    TALKER_WELCOME,
    LiveServer,
)

pytestmark = pytest.mark.models


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


async def new_outbound(live: LiveServer, call_id: str) -> None:
    await live.vox.store.create(
        CallRecord(id=call_id, agent_id=QUICK_AGENT_ID, direction=Direction.OUTBOUND)
    )


async def test_simulated_call_hears_greeting_gets_answer_and_is_recorded(
    live: LiveServer,
) -> None:
    vox = live.vox
    await new_outbound(live, "call_e2e_1")
    sid = await vox.simulated.place_call(
        to="+15550009999",
        from_="+15550001111",
        agent_id=QUICK_AGENT_ID,
        call_id="call_e2e_1",
        contact=SimulatedContact(lines=["Do you sell tomato plants?"], ring_s=0.1),
    )
    call = await vox.simulated.wait(sid, timeout=90)
    report = call.report
    assert report is not None and call.error is None
    await report.transcribe(vox.engine.stt)

    greeting, *replies = report.heard
    # The greeting, sent as mu-law over the socket, is understood by Whisper.
    assert len(words(greeting.text) & words(QUICK_WELCOME)) >= 4, greeting.text
    said = report.said[0]
    assert said.ended_at is not None
    reply = [u for u in replies if u.started_at >= said.ended_at]
    assert reply and len(words(reply[0].text)) >= 2, [u.text for u in replies]
    assert report.reply_latency_ms[0] is not None
    # One mark per utterance, each echoed back once its audio played; no clear.
    assert len(report.marks_received) == len(report.heard) >= 2
    assert sorted(report.marks_echoed) == sorted(report.marks_received)
    assert report.clears == 0 and report.closed_by == "callee" and not report.errors

    record = await vox.store.wait_final("call_e2e_1", 10)
    assert record.status == CallStatus.COMPLETED and record.end_reason == "caller_hangup"
    history = [s for s, _ in record.status_history]
    assert history == ["queued", "ringing", "in_progress", "completed"]
    speakers = [e["speaker"] for e in record.transcript]
    assert speakers[:3] == ["agent", "caller", "agent"], record.transcript
    assert "tomato" in record.transcript[1]["text"].lower()
    assert record.turn_metrics and "response" in record.turn_metrics[0]["stages_ms"]

    # The stereo recording: caller left, agent right, on one timeline.
    assert record.recording_path is not None
    with wave.open(record.recording_path) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 8000)
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    left, right = audio[:, 0], audio[:, 1]

    def span(start: float, end: float) -> slice:
        return slice(int(start * 8000), int(end * 8000))

    assert greeting.ended_at is not None
    while_greeting = span(greeting.started_at + 0.3, greeting.ended_at - 0.3)
    while_caller = span(said.started_at + 0.2, said.ended_at - 0.2)
    assert rms(right[while_greeting]) > 10 * max(rms(left[while_greeting]), 1.0)
    assert rms(left[while_caller]) > 10 * max(rms(right[while_caller]), 1.0)


async def test_barge_in_clears_the_agents_audio_and_stops_media(live: LiveServer) -> None:
    interruption = CalleeLine(
        "Sorry to interrupt, I only want to know if you are open on Sunday afternoon.",
        barge_in=True,
    )
    callee = SimulatedCallee(
        live.media_url,
        [interruption],
        tts=live.vox.engine.tts,
        agent_id=TALKER_AGENT_ID,
        call_id="call_barge_in",
        token=await live.token("call_barge_in", TALKER_AGENT_ID),
        barge_in_after_s=1.5,
    )
    report = await callee.run()
    assert report.clears == 1
    [clear_t] = report.clear_times
    said = report.said[0]
    assert said.ended_at is not None
    # Nothing more of the old utterance arrives once the caller has the floor
    # (150 ms of grace for frames already in flight on the socket).
    late = [t for t in report.media_times if clear_t + 0.15 < t < said.ended_at]
    assert late == []
    greeting = report.heard[0]
    assert greeting.interrupted and greeting.ended_at is not None
    # The caller heard only part of the long welcome (it lasts well over 10 s).
    assert greeting.ended_at - greeting.started_at < 6.0
    record = await live.vox.store.wait_final(callee.call_id, 10)
    first = record.transcript[0]
    assert first["speaker"] == "agent" and first["interrupted"]
    assert len(first["text"]) < len(TALKER_WELCOME)


# --------------------------------------------------------------------- bad input


async def raw_call(
    live: LiveServer,
    script: Callable[[websockets.ClientConnection, CarrierStream], Awaitable[None]],
) -> tuple[int | None, str]:
    """Run ``script`` on a raw socket; return how the server closed it."""
    stream = CarrierStream(stream_sid="MZbad" + str(time.monotonic_ns()), call_sid="CAbad")
    async with websockets.connect(live.media_url, close_timeout=2) as ws:
        await script(ws, stream)
        try:
            async with asyncio.timeout(15):
                async for _ in ws:
                    pass
        except ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason or ""


async def final_record(live: LiveServer, call_id: str) -> CallRecord:
    return await live.vox.store.wait_final(call_id, 15)


async def records_ending_with(live: LiveServer, fragment: str) -> list[CallRecord]:
    return [r for r in await live.vox.store.list() if fragment in (r.end_reason or "")]


async def test_each_bad_input_ends_only_its_own_call(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.twilio.phone_call")
    tts = live.vox.engine.tts
    speech = to_mulaw_frames(await synthesize(tts, "I would like to book an appointment."))
    good = SimulatedCallee(
        live.media_url,
        ["Hello, do you deliver to the city centre?"],
        tts=tts,
        agent_id=QUICK_AGENT_ID,
        call_id="call_good",
        token=await live.token("call_good"),
    )
    good_task = asyncio.create_task(good.run())

    async def send(*messages: str) -> Callable[..., Awaitable[None]]:
        async def script(ws: websockets.ClientConnection, stream: CarrierStream) -> None:
            for m in messages:
                await ws.send(m)

        return script

    def started(
        call_id: str, *after: Callable[[CarrierStream], str]
    ) -> Callable[..., Awaitable[None]]:
        async def script(ws: websockets.ClientConnection, stream: CarrierStream) -> None:
            await ws.send(stream.connected())
            await ws.send(stream.start(await live.start_params(call_id)))
            for make in after:
                await ws.send(make(stream))

        return script

    def media_json(payload_b64: str) -> Callable[[CarrierStream], str]:
        def make(stream: CarrierStream) -> str:
            message = json.loads(stream.media(b"\xff" * 160, 0))
            message["media"]["payload"] = payload_b64
            return json.dumps(message)

        return make

    # Before 'start' (and its token) nothing identifies the call: the stream is refused
    # and no record is written for the attempt.
    before = len(await live.vox.store.list())
    code, reason = await raw_call(live, await send("hello, not json"))
    assert code == 1008 and "not JSON" in reason
    code, reason = await raw_call(live, await send('{"event": "start"}'))
    assert code == 1008 and "no 'start'" in reason
    stream0 = CarrierStream("MZx", "CAx")
    code, reason = await raw_call(live, await send(stream0.connected(), stream0.stop()))
    assert code == 1008 and "'stop' before 'start'" in reason
    code, reason = await raw_call(live, await send(stream0.media(b"\xff" * 160, 0)))
    assert code == 1008 and "'media' before 'start'" in reason
    for fragment in ("not JSON", "'stop' before 'start'", "'media' before 'start'"):
        assert await records_ending_with(live, fragment) == []
    assert len(await live.vox.store.list()) == before

    # After 'start': the named call record ends failed with the reason.
    cases = {
        "call_bad_event": (started("call_bad_event", lambda s: '{"event": "dance"}'), "unknown"),
        "call_bad_size": (
            started("call_bad_size", lambda s: s.media(b"\xff" * 100, 0)),
            "100 bytes",
        ),
        "call_bad_b64": (started("call_bad_b64", media_json("***")), "not valid base64"),
        "call_bad_agent": (
            started("call_bad_agent"),
            "unknown agent_id",
        ),
    }
    for call_id, (script, fragment) in cases.items():
        if call_id == "call_bad_agent":

            async def script(ws: websockets.ClientConnection, stream: CarrierStream) -> None:
                await ws.send(
                    stream.start(await live.start_params("call_bad_agent", "no-such-agent"))
                )

        code, reason = await raw_call(live, script)
        record = await final_record(live, call_id)
        assert record.status == CallStatus.FAILED, (call_id, record)
        assert fragment in (record.end_reason or ""), (call_id, record.end_reason)
        assert fragment in reason

    # A caller who hangs up mid-sentence (socket gone, no 'stop').
    async def mid_sentence(ws: websockets.ClientConnection, stream: CarrierStream) -> None:
        await ws.send(stream.connected())
        await ws.send(stream.start(await live.start_params("call_cut_off")))
        for k, frame in enumerate(speech[: len(speech) // 2]):
            await ws.send(stream.media(frame, k * 20))
            await asyncio.sleep(0.02)
        ws.transport.abort()  # gone without a close handshake

    with contextlib.suppress(ConnectionClosed, OSError):
        await raw_call(live, mid_sentence)
    record = await final_record(live, "call_cut_off")
    assert record.status == CallStatus.COMPLETED
    assert record.end_reason == "caller_disconnected without 'stop'"

    # A half-open socket that says nothing after 'start' is timed out.
    async def silent(ws: websockets.ClientConnection, stream: CarrierStream) -> None:
        await ws.send(stream.connected())
        await ws.send(stream.start(await live.start_params("call_silent")))

    code, _ = await raw_call(live, silent)
    record = await final_record(live, "call_silent")
    assert record.status == CallStatus.FAILED and "timeout" in (record.end_reason or "")

    # Every failure was logged with its call and reason...
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    for call_id in ("call_bad_event", "call_bad_size", "call_bad_b64", "call_silent"):
        assert f"call {call_id} ended (failed)" in logged
    # ...and the good call, running the whole time, was untouched.
    report = await asyncio.wait_for(good_task, 90)
    await report.transcribe(live.vox.engine.stt)
    assert not report.errors and report.closed_by == "callee"
    assert report.reply_latency_ms[0] is not None
    good_record = await final_record(live, good.call_id)
    assert good_record.status == CallStatus.COMPLETED
    assert good_record.end_reason == "caller_hangup"


# --------------------------------------------------------------------- carrier outcomes


@pytest.mark.parametrize(
    ("outcome", "status", "history"),
    [
        ("busy", CallStatus.BUSY, ["queued", "ringing", "busy"]),
        ("no-answer", CallStatus.NO_ANSWER, ["queued", "ringing", "no_answer"]),
        ("failed", CallStatus.FAILED, ["queued", "failed"]),
    ],
)
async def test_simulated_carrier_outcomes_set_on_the_contact(
    live: LiveServer, outcome: str, status: CallStatus, history: list[str]
) -> None:
    vox = live.vox
    number = f"+1555000{len(outcome):04d}"
    vox.simulated.contacts[number] = SimulatedContact(outcome=outcome, ring_s=0.05)  # type: ignore[arg-type]
    vox.simulated.no_answer_after_s = 0.1
    call_id = f"call_outcome_{outcome}"
    await new_outbound(live, call_id)
    sid = await vox.simulated.place_call(
        to=number, from_="+15550001111", agent_id=QUICK_AGENT_ID, call_id=call_id
    )
    call = await vox.simulated.wait(sid, timeout=10)
    assert call.report is None  # nobody answered: no media stream at all
    record = await final_record(live, call_id)
    assert record.status == status
    assert [s for s, _ in record.status_history] == history
    assert record.carrier_call_id == sid and record.recording_path is None
