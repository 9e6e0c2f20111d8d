"""ICE configuration: which STUN/TURN servers peers use, and loopback candidates.

Defaults keep every call on the machine's own addresses: no ICE servers unless
configured. ``RTCConfiguration(iceServers=None)`` would make aiortc fall back to
a public STUN server, so an empty list is always passed explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_original_get_host_addresses = aioice.ice.get_host_addresses


def rtc_configuration(
    urls: Sequence[str], username: str | None = None, credential: str | None = None
) -> RTCConfiguration:
    servers = [
        RTCIceServer(urls=url, username=username, credential=credential)
        if url.startswith(("turn:", "turns:"))
        else RTCIceServer(urls=url)
        for url in urls
    ]
    return RTCConfiguration(iceServers=servers)


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return [LOOPBACK] if use_ipv4 else []


def use_loopback_candidates(enabled: bool) -> None:
    """Make (or stop making) every aiortc peer in this process gather 127.0.0.1 only.

    aioice drops loopback from its host addresses, so without this a peer in a
    loopback-only network namespace (tests, a dev box with no network) has no
    candidate at all. aioice looks ``get_host_addresses`` up at gathering time,
    so replacing the module attribute is enough. Process-wide on purpose: it is
    a dev/test switch (``VOXLINE_WEBRTC_LOOPBACK_CANDIDATES``), never for a
    deployment, where peers need their real addresses.
    """
    if enabled:
        aioice.ice.get_host_addresses = _loopback_addresses
        log.warning("WebRTC: loopback candidates only (dev/test setting)")
    else:
        aioice.ice.get_host_addresses = _original_get_host_addresses
