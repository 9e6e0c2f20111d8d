"""G.711 A-law: the codec of European and most international lines, bit-exact with g711.c."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from voice_core.audio import alaw, mulaw


def test_known_codes() -> None:
    # Reference values of ITU-T G.711 / g711.c: silence, full scale, the sign bit.
    assert alaw.encode(np.array([0, -1, 32767, -32768], dtype=np.int16)) == bytes(
        [0xD5, 0x55, 0xAA, 0x2A]
    )
    assert list(alaw.decode(bytes([0xD5, 0x55, 0xAA, 0x2A]))) == [8, -8, 32256, -32256]


def test_round_trip_error_is_within_the_segment_step() -> None:
    x = np.arange(-32768, 32768, 7, dtype=np.int16)
    y = alaw.decode(alaw.encode(x)).astype(np.int32)
    err = np.abs(y - x.astype(np.int32))
    # 13-bit segments: the step doubles per segment, at most 1024 at full scale.
    assert int(err.max()) <= 1024
    assert np.all(err[np.abs(x.astype(np.int32)) < 256] <= 8)


def test_every_code_decodes_and_encodes_back_to_itself() -> None:
    codes = bytes(range(256))
    assert alaw.encode(alaw.decode(codes)) == codes


def test_same_size_as_mu_law() -> None:
    x = (np.sin(np.arange(160) / 5) * 12000).astype(np.int16)
    assert len(alaw.encode(x)) == len(mulaw.encode(x)) == 160


def test_bit_exact_with_audioop_where_python_still_has_it() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13
    x = np.arange(-32768, 32768, dtype=np.int16)
    assert alaw.encode(x) == audioop.lin2alaw(x.tobytes(), 2)
    codes = bytes(range(256))
    assert np.array_equal(alaw.decode(codes), np.frombuffer(audioop.alaw2lin(codes, 2), np.int16))
