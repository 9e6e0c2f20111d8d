"""The fetch the server injects into the engine for agents' tools (``voice_core.tools``).

Every tool request is a tenant-chosen URL this server fetches mid-call, so it passes
the same egress policy as post-call webhooks (``api.postcall.egress``): the host is
resolved and refused if any address is not public (unless the operator sets
``VOXLINE_ALLOW_PRIVATE_DELIVERY_TARGETS``), only the operator's ports, and the
connection goes to the address that was checked (no DNS rebinding), TLS still
verified against the host name. Redirects are not followed: a redirect's target
would skip the check. The body is read as a stream and the read stops one byte past
the tool's limit, so a huge answer costs the call nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from api.postcall import egress
from api.settings import ServerSettings
from voice_core.tools.fetch import FetchError, FetchResponse, FetchTimeout

USER_AGENT = "voxline-tools/0.1"


class EgressFetch:
    """``voice_core.tools.fetch.Fetch`` over the egress policy of ``settings``."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    @property
    def allow_private(self) -> bool:
        # Read per request, like the post-call deliveries: the operator's switch holds
        # from the moment it is set, not from when the server started.
        return self.settings.allow_private_delivery_targets

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(self.settings.egress_allowed_ports)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env=False: an HTTP(S)_PROXY from the environment would connect to
            # the proxy, not to the address we checked.
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        json: Any = None,
        timeout_s: float,
        max_bytes: int,
    ) -> FetchResponse:
        try:
            async with asyncio.timeout(timeout_s):  # lookup, connect and whole body
                return await self._send(method, url, headers, params, json, timeout_s, max_bytes)
        except TimeoutError as exc:
            raise FetchTimeout(f"no answer within {timeout_s:g} s") from exc
        except egress.BlockedTarget as exc:
            raise FetchError(f"refused target: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise FetchTimeout(f"no answer within {timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from exc

    async def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        json: Any,
        timeout_s: float,
        max_bytes: int,
    ) -> FetchResponse:
        egress.check_literal(url, self.allow_private, self.ports)
        scheme, host, port = egress.split_url(url)
        address = (await egress.resolve_checked(host, port, self.allow_private))[0]
        default_port = 443 if scheme == "https" else 80
        all_headers = {
            "User-Agent": USER_AGENT,
            **headers,
            # the Host header names the site, not the address we connect to
            "Host": host if port == default_port else f"{host}:{port}",
        }
        client = self._http()
        request = client.build_request(
            method,
            httpx.URL(url).copy_with(host=address),
            headers=all_headers,
            params=params,
            json=json,
            timeout=timeout_s,
            extensions={"sni_hostname": host} if scheme == "https" else {},
        )
        response = await client.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    break  # one byte past the limit is enough to call it too big
            return FetchResponse(
                response.status_code,
                {k.lower(): v for k, v in response.headers.items()},
                bytes(body[: max_bytes + 1]),
            )
        finally:
            await response.aclose()
