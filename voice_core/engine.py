"""The process-wide engine: loads the shared models once and makes call sessions.

Models are shared by every call in the process (they are read-only at inference):
one Whisper, one Piper voice, one embedded llama.cpp server (or a client for a
remote OpenAI-compatible endpoint per distinct agent LLM setting).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np

from voice_core.config import AgentConfig, EngineSettings, LLMConfig
from voice_core.live_work import LiveLLM, LiveSTT, LiveWork
from voice_core.llm.base import LanguageModel
from voice_core.llm.embedded import EmbeddedLlamaServer
from voice_core.llm.openai_compat import OpenAICompatibleLLM
from voice_core.memory import HeapTrimmer, fix_mmap_threshold, limit_arenas
from voice_core.session import CallSession
from voice_core.stt.base import SpeechToText
from voice_core.tools import Fetch, ToolRunner
from voice_core.tts.base import TextToSpeech
from voice_core.turn_detection.smart_turn import TurnDetector

log = logging.getLogger(__name__)

# Clients for agents' own LLM endpoints, least recently used dropped first: one per
# endpoint, key and pinned address, so a process serving many tenants stays bounded.
MAX_LLM_CLIENTS = 32


class VoiceEngine:
    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self.stt: SpeechToText | None = None
        self.tts: TextToSpeech | None = None
        self.embedded_llm: EmbeddedLlamaServer | None = None
        self.turn_detector: TurnDetector | None = None
        self._llms: dict[tuple[str, str, str, str | None], OpenAICompatibleLLM] = {}
        self.load_times_ms: dict[str, float] = {}
        # Live turns' model work, counted so background work (analysis) gives way to it.
        self.live_work = LiveWork()
        # The HTTP fetch agents' tools use, set by whoever serves the engine (the control
        # plane injects its egress-checked one, api.tools.fetch); None: no tools offered.
        self.tool_fetch: Fetch | None = None
        self.heap_trimmer = HeapTrimmer() if self.settings.trim_after_calls else None
        self._started = False
        self._start_lock = asyncio.Lock()

    async def start(self) -> None:
        """Load every model and warm each up, so the first call is as fast as the rest."""
        async with self._start_lock:
            if self._started:
                return
            # Before the models start their threads: arenas made earlier stay.
            limit_arenas(self.settings.malloc_arenas)
            fix_mmap_threshold(self.settings.malloc_mmap_threshold_kib)
            await asyncio.to_thread(self._load)
            await self._warm_up()
            self._started = True

    def _load(self) -> None:
        from voice_core.stt.whisper import WhisperSTT
        from voice_core.tts.piper import PiperTTS
        from voice_core.turn_detection.smart_turn import SmartTurn

        s = self.settings
        t = time.perf_counter()
        self.stt = WhisperSTT(
            s.whisper_model,
            device=s.whisper_device,
            compute_type=s.whisper_compute_type,
            cpu_threads=s.whisper_threads,
        )
        self.load_times_ms["stt"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        self.tts = PiperTTS(s.piper_voice, threads=s.piper_threads)
        self.load_times_ms["tts"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        try:
            self.turn_detector = SmartTurn()
            self.load_times_ms["turn_detector"] = (time.perf_counter() - t) * 1000
        except (FileNotFoundError, ImportError) as exc:
            # Agents in model mode then end turns on the fixed silence (logged per turn).
            log.warning("end-of-turn model unavailable: %s", exc)
        if not s.llm_base_url:
            t = time.perf_counter()
            self.embedded_llm = EmbeddedLlamaServer.shared(
                gguf_path=s.embedded_llm_gguf,
                threads=s.embedded_llm_threads,
                ctx=s.embedded_llm_ctx,
                parallel=s.embedded_llm_parallel,
                batch=s.embedded_llm_batch,
                cache_ram_mib=s.embedded_llm_cache_ram_mib,
            )
            self.load_times_ms["llm"] = (time.perf_counter() - t) * 1000

    async def _warm_up(self) -> None:
        assert self.stt is not None and self.tts is not None
        t = time.perf_counter()
        await self.stt.transcribe(np.zeros(16000, dtype=np.int16))
        async for _ in self.tts.synthesize("Hello."):
            pass
        llm = self.llm_for(AgentConfig().llm)
        try:
            async for _ in llm.stream([{"role": "user", "content": "Hi"}], max_tokens=2):
                pass
        except Exception as exc:  # a remote endpoint may be down at start; calls use fallbacks
            log.warning("LLM warm-up failed: %s", exc)
        self.load_times_ms["warm_up"] = (time.perf_counter() - t) * 1000

    def llm_for(self, cfg: LLMConfig) -> LanguageModel:
        """The LLM for an agent: its own endpoint if set, else the process default."""
        s = self.settings
        base_url = cfg.base_url or s.llm_base_url
        pinned = cfg.pinned_address
        if base_url:
            model = cfg.model or s.llm_model or "default"
            # The operator's key goes only to the operator's own endpoint, never to an
            # agent's (the control plane also checks; this holds without it).
            own = _same_endpoint(base_url, s.llm_base_url)
            key = cfg.api_key or (s.llm_api_key if own else "") or ""
        else:
            if self.embedded_llm is None:
                raise RuntimeError("engine not started: the embedded LLM is not running")
            base_url, model, key = self.embedded_llm.base_url, self.embedded_llm.model, ""
            pinned = None
        cache_key = (base_url, model, key, pinned)
        llm = self._llms.pop(cache_key, None) or OpenAICompatibleLLM(
            base_url, model, key or None, pinned_address=pinned
        )
        self._llms[cache_key] = llm  # most recently used last
        while len(self._llms) > MAX_LLM_CLIENTS:
            self._llms.pop(next(iter(self._llms)))
        return llm

    def new_session(
        self,
        agent: AgentConfig,
        *,
        call_id: str = "",
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> CallSession:
        if not self._started or self.stt is None or self.tts is None:
            raise RuntimeError("call VoiceEngine.start() before creating sessions")
        live = self.live_work
        if "tools" not in kwargs:
            kwargs["tools"] = self.tools_for(agent)
        return CallSession(
            agent,
            stt=LiveSTT(self.stt, live),
            llm=LiveLLM(self.llm_for(agent.llm), live),
            tts=self.tts,
            call_id=call_id,
            context=context,
            playout_lead_ms=self.settings.playout_lead_ms,
            turn_detector=self.turn_detector,
            on_ended=self.heap_trimmer.call_ended if self.heap_trimmer else None,
            **kwargs,
        )

    def tools_for(self, agent: AgentConfig) -> ToolRunner | None:
        """The agent's custom tools and web search for one call; None when it has none
        or no fetch was injected (voice_core makes no request of its own)."""
        if self.tool_fetch is None or not (agent.tools or agent.web_search.enabled):
            return None
        return ToolRunner(
            agent.tools, agent.web_search, self.tool_fetch, secrets=agent.tool_secrets
        )


def _same_endpoint(a: str | None, b: str | None) -> bool:
    return bool(a and b) and a.rstrip("/") == b.rstrip("/")  # type: ignore[union-attr]
