import numpy as np

from voice_core.audio import mulaw


def test_reference_code_points() -> None:
    # G.711 mu-law: silence is 0xFF on the wire, full scale 0x80 / 0x00.
    assert mulaw.encode(np.array([0], np.int16)) == b"\xff"
    assert mulaw.encode(np.array([32767], np.int16)) == b"\x80"
    assert mulaw.encode(np.array([-32768], np.int16)) == b"\x00"
    assert mulaw.decode(b"\xff")[0] == 0
    assert mulaw.decode(b"\x80")[0] == 32124
    assert mulaw.decode(b"\x00")[0] == -32124


def test_every_code_is_a_fixed_point() -> None:
    codes = bytes(range(256))
    levels = mulaw.decode(codes)
    again = mulaw.decode(mulaw.encode(levels))
    assert np.array_equal(levels, again)


def test_round_trip_error_is_within_half_a_quantisation_step() -> None:
    x = np.arange(-32768, 32768, 7, dtype=np.int32).astype(np.int16)
    y = mulaw.decode(mulaw.encode(x)).astype(np.int32)
    err = np.abs(y - x.astype(np.int32))
    # Step size doubles per segment: 8 in the first, 1024 in the last (beyond the
    # clip level of 32635 the error grows with the clipped amount).
    magnitude = np.minimum(np.abs(x.astype(np.int32)), 32635)
    step = np.maximum(8, 2 ** np.ceil(np.log2((magnitude + 132) / 16)))
    clip_excess = np.abs(x.astype(np.int32)) - magnitude
    assert np.all(err <= step / 2 + clip_excess + 1)


def test_speech_level_sine_keeps_g711_quality() -> None:
    t = np.arange(8000) / 8000
    x = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    y = mulaw.decode(mulaw.encode(x))
    noise = (y.astype(np.float64) - x) ** 2
    snr_db = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise))
    assert snr_db > 35  # G.711 gives ~38 dB on a speech-level tone
