import numpy as np

from voice_core.audio.resample import StreamResampler, resample


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 10000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_8k_to_16k_and_back_preserves_a_voice_band_tone() -> None:
    x = tone(1000, 8000)
    up = resample(x, 8000, 16000)
    assert up.size == 16000
    back = resample(up, 16000, 8000)
    mid = slice(400, 7600)  # ignore filter edges
    err = back[mid].astype(np.float64) - x[mid]
    assert rms(err) < 0.01 * rms(x[mid])


def test_downsampling_removes_what_would_alias() -> None:
    # A 6 kHz tone cannot exist at 8 kHz; without a filter it would fold to 2 kHz.
    x = tone(6000, 16000)
    down = resample(x, 16000, 8000)
    assert rms(down[200:-200]) < 0.01 * rms(x)  # > 40 dB down


def test_streaming_in_20ms_chunks_matches_whole_buffer() -> None:
    x = tone(700, 22050, 0.5)
    whole = resample(x, 22050, 16000)
    rs = StreamResampler(22050, 16000)
    parts = [rs.push(x[i : i + 441]) for i in range(0, x.size, 441)]
    parts.append(rs.flush())
    streamed = np.concatenate(parts)
    assert abs(streamed.size - whole.size) <= 2
    n = min(streamed.size, whole.size) - 200
    diff = streamed[200:n].astype(np.float64) - whole[200:n]
    assert rms(diff) < 0.01 * rms(whole)


def test_same_rate_is_passthrough() -> None:
    x = tone(300, 16000, 0.1)
    assert np.array_equal(StreamResampler(16000, 16000).push(x), x)
