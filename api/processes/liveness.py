"""When a process counts as dead.

Two ways, whichever is first:

- its heartbeat is older than the timeout (``VOXLINE_PROCESS_TIMEOUT_S``, 30 s by
  default: six missed beats at the default 5 s interval, long enough that a busy
  event loop or a slow database commit is not taken for a death);
- it ran on this host, in this PID namespace, and its PID no longer exists. That is
  what makes a restarted single process finalize its predecessor's calls at start-up
  instead of a timeout later. A PID that was reused by another program looks alive,
  which only means waiting for the timeout.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


def this_host() -> str:
    """Host name plus PID namespace: equal for processes that can see each other's PIDs
    (two containers with the same host name but separate namespaces differ)."""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = "-"
    return f"{socket.gethostname()}/{namespace}"[:160]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@dataclass(frozen=True)
class SeenProcess:
    id: str
    host: str
    pid: int
    heartbeat_at: datetime


def why_dead(
    process: SeenProcess,
    now: datetime,
    *,
    timeout_s: float,
    host: str,
    own_pid: int,
    alive: Callable[[int], bool] = pid_alive,
) -> str | None:
    """Why ``process`` is dead (for its calls' end reason), or None if it may be alive."""
    beat = process.heartbeat_at
    if beat.tzinfo is None:  # SQLite hands back naive UTC
        beat = beat.replace(tzinfo=UTC)
    age = (now - beat).total_seconds()
    if age > timeout_s:
        return f"stopped (no heartbeat for {age:.0f} s)"
    if process.host == host and process.pid != own_pid and not alive(process.pid):
        return f"stopped (pid {process.pid} exited)"
    return None
