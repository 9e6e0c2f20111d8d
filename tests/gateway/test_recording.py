"""Stereo call recordings: both sides on one timeline."""

from __future__ import annotations

import wave

import numpy as np

from gateway.recording import RECORDING_RATE, StereoRecorder


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def tone(n: int, value: int = 1000) -> np.ndarray:
    return np.full(n, value, dtype=np.int16)


def test_sides_are_aligned_with_silence_where_a_side_said_nothing(tmp_path) -> None:
    clock = FakeClock()
    rec = StereoRecorder(clock)
    rec.add_caller(tone(160), timestamp_ms=0)
    rec.add_caller(tone(160), timestamp_ms=500)  # a gap the carrier's clock says happened
    clock.t += 1.0
    rec.add_agent(tone(160, 2000))  # agent speaks at t = 1 s
    rec.add_agent(tone(160, 2000))  # continues right after the previous frame
    path = rec.save(tmp_path / "call.wav")
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2 and w.getframerate() == RECORDING_RATE
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    left, right = data[:, 0], data[:, 1]
    assert (left[:160] == 1000).all() and (left[160:4000] == 0).all()
    assert (left[4000:4160] == 1000).all()
    assert (right[:8000] == 0).all() and (right[8000:8320] == 2000).all()


def test_clear_cuts_agent_audio_the_caller_never_heard() -> None:
    clock = FakeClock()
    rec = StereoRecorder(clock)
    for _ in range(10):  # 200 ms handed out ahead of playback
        rec.add_agent(tone(160, 3000))
    clock.t += 0.05
    rec.clear_agent()  # barge-in after 50 ms of playback
    audio = rec.stereo()
    assert audio.shape[0] == 400
    clock.t += 0.05
    rec.add_agent(tone(160, 5000))  # the next utterance starts now, not after the dropped audio
    assert (rec.stereo()[800:960, 1] == 5000).all()


def test_a_bogus_caller_timestamp_cannot_make_a_huge_file() -> None:
    rec = StereoRecorder(FakeClock())
    rec.add_caller(tone(160), timestamp_ms=10**12)
    assert rec.stereo().shape[0] <= RECORDING_RATE + 160
