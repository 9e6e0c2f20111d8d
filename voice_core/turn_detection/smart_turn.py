"""Smart Turn v3.2: an acoustic end-of-turn model (BSD-2, Daily), run with onnxruntime.

The 8.7 MB int8 ONNX ships inside the ``pipecat-ai`` wheel, which ``make install``
installs without its dependencies, only for this file (pipecat itself is never
imported: its package imports loguru and more). Input: the last 8 s of the turn at
**16 kHz** (8 kHz audio mis-predicts silently; every voxline transport already hands
the engine 16 kHz), as Whisper-style log-mel features (faster-whisper's extractor
matches the model's own to 2e-7). Output: the probability that the turn is complete.
~40 ms per decision on one thread of these 2 cores.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16000
WINDOW_S = 8
MODEL_FILE = "smart-turn-v3.2-cpu.onnx"


def bundled_model_path() -> Path | None:
    """The model inside the installed pipecat-ai wheel, found without importing pipecat."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "audio" / "turn" / "smart_turn" / "data" / MODEL_FILE
        if path.exists():
            return path
    return None


class TurnDetector(Protocol):
    async def judge(self, audio: np.ndarray) -> float:
        """The probability that the turn in ``audio`` (int16, 16 kHz) is complete."""
        ...


class SmartTurn:
    """``probability(audio)``: int16 mono 16 kHz, the turn so far (any length)."""

    def __init__(self, model_path: str | Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor

        path = Path(model_path) if model_path else bundled_model_path()
        if path is None or not path.exists():
            raise FileNotFoundError(
                f"{MODEL_FILE} not found: pip install --no-deps pipecat-ai (make install does)"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(path), sess_options=options)
        self._features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)
        self._lock = threading.Lock()  # one run at a time per session object
        # Its own thread: a decision never waits behind a Whisper decode.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="turn-detect")
        self.path = path

    async def judge(self, audio: np.ndarray) -> float:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.probability, audio)

    def probability(self, audio: np.ndarray) -> float:
        n = WINDOW_S * SAMPLE_RATE
        x = audio[-n:].astype(np.float32) / 32768.0
        if x.size < n:  # the model was trained on turns padded at the front
            x = np.concatenate([np.zeros(n - x.size, np.float32), x])
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        features = self._features(x, padding=0)[None].astype(np.float32)
        with self._lock:
            out = self._session.run(None, {"input_features": features})
        return float(np.asarray(out[0]).reshape(-1)[0])
