"""A PCM16 WAV written as it is captured, playable at every moment, even after a SIGKILL.

The 44-byte header is written first with provisional sizes (``0xFFFFFFFF``, the
convention of streaming WAV writers: "to the end of the file"), then frames are
appended. ``close`` writes the real sizes. A process killed mid-call leaves a file
whose frames are all there and whose readers (ffmpeg, sox, browsers, Python's
``wave``) play to the end of the data; ``repair`` later writes the real sizes from
the file's length (and drops a half-written frame), which is what the orphan sweep
does for a call whose process died.

Writes go to the OS page cache without ``fsync``: a killed process loses nothing
that was written; only a crash of the machine itself could lose the last seconds.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

HEADER_BYTES = 44
_UNKNOWN = 0xFFFFFFFF
SAMPLE_BYTES = 2  # PCM16


def _header(channels: int, rate: int, data_bytes: int) -> bytes:
    riff = _UNKNOWN if data_bytes == _UNKNOWN else 36 + data_bytes
    block = channels * SAMPLE_BYTES
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class WavStream:
    """Append-only PCM16 WAV file; frames are interleaved little-endian int16 bytes."""

    def __init__(self, path: str | Path, *, channels: int, rate: int) -> None:
        self.path = Path(path)
        self.channels = channels
        self.rate = rate
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = self.path.open("wb")
        self._file.write(_header(channels, rate, _UNKNOWN))
        self._file.flush()
        self.frames = 0

    def append(self, interleaved: bytes) -> None:
        """Write frames and hand them to the OS at once (a kill keeps them)."""
        if self._file is None:
            raise ValueError(f"{self.path}: the recording is closed")
        self._file.write(interleaved)
        self._file.flush()
        self.frames += len(interleaved) // (self.channels * SAMPLE_BYTES)

    def close(self) -> None:
        """Write the real sizes; the file is a plain WAV from now on."""
        if self._file is None:
            return
        data = self.frames * self.channels * SAMPLE_BYTES
        self._file.seek(0)
        self._file.write(_header(self.channels, self.rate, data))
        self._file.close()
        self._file = None


def repair(path: str | Path) -> int | None:
    """Give a streamed WAV whose writer died its real sizes; returns its frame count.

    A file that is not one of ours (no 44-byte PCM header) is left alone: None. A
    complete file is rewritten with the sizes it already has, so repairing twice is
    harmless.
    """
    path = Path(path)
    try:
        with path.open("r+b") as f:
            head = f.read(HEADER_BYTES)
            if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[8:16] != b"WAVEfmt ":
                return None
            if head[36:40] != b"data" or struct.unpack("<H", head[20:22])[0] != 1:
                return None
            channels, rate = struct.unpack("<HI", head[22:28])
            block = channels * SAMPLE_BYTES
            size = os.fstat(f.fileno()).st_size
            data = (size - HEADER_BYTES) // block * block
            f.truncate(HEADER_BYTES + data)  # a frame cut in half by the kill
            f.seek(0)
            f.write(_header(channels, rate, data))
            return data // block
    except FileNotFoundError:
        return None
