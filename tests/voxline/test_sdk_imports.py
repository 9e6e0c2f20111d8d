"""The SDK installs and imports without the server: ``import voxline.client`` loads no
module of ``api``, ``gateway`` or ``voice_core`` (faster-whisper, aiortc, llama.cpp)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = ("api", "gateway", "voice_core")

PROBE = """
import json, sys
import voxline.client, voxline
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_sdk_loads_no_server_module() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "voxline.client" in loaded
    server = [m for m in loaded if m.split(".", 1)[0] in SERVER_PACKAGES]
    assert server == [], server
