"""Outbound requests to customer-supplied URLs, with SSRF protection.

A webhook URL is user input that this server will fetch. Without a check, an API
key holder could make voxline call the cloud metadata service (169.254.169.254),
the database, or anything else on the private network. So every outbound host is
resolved, and if any address it resolves to is private, loopback, link-local,
multicast, reserved or unspecified the request is refused (unless the operator sets
``VOXLINE_ALLOW_PRIVATE_DELIVERY_TARGETS=true``); IPv6 forms that embed an IPv4
address (NAT64, 6to4, IPv4-compatible) count as not public, and only ports 80 and
443 are allowed unless the operator lists more (``VOXLINE_EGRESS_ALLOWED_PORTS``).
The connection is then made to the address that was checked, not to a second
lookup of the name, so a DNS answer that changes between the check and the connect
(DNS rebinding) cannot slip through; TLS still verifies the certificate against the
original host name (SNI).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from contextvars import ContextVar
from urllib.parse import urlsplit

import httpx

# Set per request by the control plane (``api.postcall.EgressPolicyMiddleware``) so
# checks made while saving an agent follow the serving app's setting.
allow_private_targets: ContextVar[bool] = ContextVar("allow_private_targets", default=False)

RESOLVE_TIMEOUT_S = 5.0


class BlockedTarget(Exception):
    """The URL is not allowed as an outbound target (the message says why)."""


class UnresolvedHost(BlockedTarget):
    """The host name did not resolve (or not in time): possibly a transient DNS
    failure rather than a refused target, so a save-time check may let it pass."""


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# IPv6 ranges that carry an IPv4 address a translator or tunnel may deliver to: NAT64
# (well-known and local-use prefixes), 6to4, and the deprecated IPv4-compatible form.
# No honest delivery target needs them, and each can reach a private IPv4 network.
EMBEDDING_V4 = tuple(
    ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96")
)

DEFAULT_PORTS = (80, 443)
# Ports outbound requests may use, set per request like allow_private_targets (the
# delivery worker passes its settings' list explicitly).
allowed_ports: ContextVar[tuple[int, ...]] = ContextVar("allowed_ports", default=DEFAULT_PORTS)


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever its notation
        elif any(ip in net for net in EMBEDDING_V4):
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_unspecified


def check_port(port: int, allow_private: bool, ports: Collection[int] | None) -> None:
    """Only the operator's ports (80 and 443 by default); the development setting that
    allows private targets lifts this too (local services listen anywhere)."""
    if allow_private:
        return
    allowed = allowed_ports.get() if ports is None else ports
    if port not in allowed:
        raise BlockedTarget(
            f"port {port} is not allowed (allowed: {', '.join(map(str, sorted(allowed)))}; "
            "the operator extends this with VOXLINE_EGRESS_ALLOWED_PORTS)"
        )


def split_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL, or BlockedTarget."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedTarget(f"invalid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise BlockedTarget("URL scheme must be http or https")
    if not parts.hostname:
        raise BlockedTarget("URL has no host")
    if parts.username or parts.password:
        raise BlockedTarget("credentials in the URL are not allowed; use headers")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_literal(url: str, allow_private: bool, ports: Collection[int] | None = None) -> None:
    """The checks that need no DNS: scheme, host present, port, and an IP-literal or
    ``localhost`` host that is not public."""
    _, host, port = split_url(url)
    check_port(port, allow_private, ports)
    if allow_private:
        return
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        raise BlockedTarget(f"host {host!r} is loopback")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return
    if not is_public(ip):
        raise BlockedTarget(f"address {host} is not public (private, loopback or link-local)")


async def resolve_checked(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses of ``host``; BlockedTarget if any is not public (one bad address
    is enough: the client could connect to that one); UnresolvedHost if the lookup fails."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise UnresolvedHost(f"host {host!r} does not resolve: {exc}") from exc
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 scope id
        if address not in addresses:
            addresses.append(address)
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address)):
                raise BlockedTarget(
                    f"host {host!r} resolves to {address}, which is not public "
                    "(private, loopback or link-local)"
                )
    if not addresses:
        raise BlockedTarget(f"host {host!r} has no address")
    return addresses


async def check_url(url: str, allow_private: bool, ports: Collection[int] | None = None) -> None:
    check_literal(url, allow_private, ports)
    _, host, port = split_url(url)
    await resolve_checked(host, port, allow_private)


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    allow_private: bool,
    ports: Collection[int] | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: object,
) -> httpx.Response:
    """``client.request`` to the checked address of ``url``'s host (see module doc)."""
    check_literal(url, allow_private, ports)
    scheme, host, port = split_url(url)
    address = (await resolve_checked(host, port, allow_private))[0]
    target = httpx.URL(url)
    pinned = target.copy_with(host=address)
    all_headers = dict(headers or {})
    # the Host header names the site, not the address we connect to
    default_port = 443 if scheme == "https" else 80
    all_headers.setdefault("Host", host if port == default_port else f"{host}:{port}")
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    return await client.request(
        method, pinned, headers=all_headers, extensions=extensions, **kwargs
    )
