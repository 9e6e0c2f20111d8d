import numpy as np
import pytest

from voice_core.audio.frames import FRAME_SAMPLES, FrameError, Framer, validate_frame


def test_accepts_int16_and_pcm_bytes() -> None:
    frame = np.arange(FRAME_SAMPLES, dtype=np.int16)
    assert validate_frame(frame) is frame
    assert np.array_equal(validate_frame(frame.tobytes()), frame)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (np.zeros(160, np.int16), "160 samples"),  # 8 kHz frame
        (np.zeros(960, np.int16), "960 samples"),  # 48 kHz frame
        (np.zeros((320, 2), np.int16), "mono"),
        (b"\x00" * 100, "100 bytes"),
        (np.full(320, np.nan, np.float32), "NaN"),
        (np.zeros(320, np.int32), "dtype"),
        ("not audio", "numpy array or bytes"),
    ],
)
def test_rejects_malformed_frames_with_the_reason(frame: object, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        validate_frame(frame)


def test_float_frames_are_converted_and_clipped() -> None:
    out = validate_frame(np.full(FRAME_SAMPLES, 2.0, np.float32))
    assert out.dtype == np.int16 and out.max() == 32767


def test_framer_cuts_arbitrary_chunks_into_whole_frames() -> None:
    f = Framer()
    got = f.push(np.ones(500, np.int16)) + f.push(np.ones(500, np.int16))
    assert [len(x) for x in got] == [320, 320, 320]
    tail = f.flush()
    assert len(tail) == 1 and tail[0][:40].all() and not tail[0][40:].any()
