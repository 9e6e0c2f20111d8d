"""Recordings streamed to disk as the call goes: the finished file is the same as one
written at the end, and at any moment (a SIGKILL) the file holds the call so far and
plays once its header is repaired."""

from __future__ import annotations

import shutil
import struct
import wave

import numpy as np

from gateway.recording import RECORDING_RATE, StereoRecorder
from gateway.wav_stream import WavStream, repair


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def frames(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, RECORDING_RATE, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)


def play_a_call(recorders: list[StereoRecorder], clock: FakeClock, seconds: int) -> None:
    """20 ms caller frames every 20 ms; the agent talks in bursts, queued ahead of the
    clock, and is cut by a barge-in now and then; the caller goes quiet for a while."""
    rng = np.random.default_rng(7)
    for step in range(seconds * 50):
        t_ms = step * 20
        if not 3000 <= t_ms < 6000:  # the carrier sends nothing for 3 s
            caller = rng.integers(-3000, 3000, 160, dtype=np.int16)
            for rec in recorders:
                rec.add_caller(caller, t_ms)
        if step % 50 == 0:
            burst = rng.integers(-5000, 5000, 160 * 60, dtype=np.int16)  # 1.2 s queued
            for rec in recorders:
                rec.add_agent(burst)
        if step % 125 == 30:
            for rec in recorders:
                rec.clear_agent()
        clock.t += 0.02


def test_the_streamed_file_is_the_recording_written_at_the_end(tmp_path) -> None:
    clock = FakeClock()
    streamed, kept = StereoRecorder(clock), StereoRecorder(clock)
    streamed.stream_to(tmp_path / "streamed.wav")
    play_a_call([streamed, kept], clock, seconds=12)
    # Memory stays flat: what is settled went to disk.
    assert sum(a.size for _, a in streamed.caller.segments) < 3 * RECORDING_RATE
    assert streamed.finish() == tmp_path / "streamed.wav"
    kept.save(tmp_path / "kept.wav")
    assert np.array_equal(frames(tmp_path / "streamed.wav"), frames(tmp_path / "kept.wav"))


def test_a_file_left_by_a_killed_process_holds_the_call_so_far(tmp_path) -> None:
    clock = FakeClock()
    rec, whole = StereoRecorder(clock), StereoRecorder(clock)
    rec.stream_to(tmp_path / "call.wav")
    play_a_call([rec, whole], clock, seconds=8)
    # Killed here: never finished. The header still says "to the end of the file".
    left = tmp_path / "left.wav"
    shutil.copy(tmp_path / "call.wav", left)
    assert struct.unpack("<I", left.read_bytes()[40:44]) == (0xFFFFFFFF,)
    with open(left, "ab") as f:
        f.write(b"\x01\x02")  # half a frame, as a kill mid-write leaves
    n = repair(left)
    assert n is not None and n > 5 * RECORDING_RATE  # all but the last second or so
    whole.save(tmp_path / "whole.wav")
    assert np.array_equal(frames(left), frames(tmp_path / "whole.wav")[:n])
    assert repair(left) == n  # repairing again changes nothing


def test_repair_leaves_files_that_are_not_streamed_wavs_alone(tmp_path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not a recording at all, but long enough to have a header's size")
    assert repair(other) is None
    assert repair(tmp_path / "missing.wav") is None
    stream = WavStream(tmp_path / "empty.wav", channels=2, rate=RECORDING_RATE)
    stream.close()
    assert repair(tmp_path / "empty.wav") == 0 and len(frames(tmp_path / "empty.wav")) == 0
