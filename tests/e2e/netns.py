"""A throwaway network namespace with only loopback up, for browser <-> server tests.

Inside it 127.0.0.1 is the only address, so Chromium and aiortc can gather
nothing but loopback candidates and no packet can leave the machine. Needs
root (CAP_SYS_ADMIN) and iproute2; ``unavailable_reason`` says why not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    return None


class NetNamespace:
    def __init__(self) -> None:
        self.name = f"vxtest-{uuid.uuid4().hex[:8]}"
        self.created = False

    def __enter__(self) -> NetNamespace:
        if not self.created:
            self.create()
        return self

    def create(self) -> None:
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        try:
            self.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        except BaseException:
            self.delete()
            raise
        self.created = True

    def __exit__(self, *exc: object) -> None:
        self.delete()

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv), **kwargs)  # type: ignore[call-overload]

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen:
        return subprocess.Popen(self.command(argv), **kwargs)  # type: ignore[call-overload]
