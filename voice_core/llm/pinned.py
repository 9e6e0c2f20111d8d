"""Connect to the address the control plane checked, not to what DNS says later.

The egress policy resolves a tenant's LLM host at call start and refuses private
addresses. If the HTTP client then resolved the name again, a hostile DNS server
could answer a public address to the check and ``127.0.0.1`` to the connection
(DNS rebinding). This transport sends every request of the call to the checked
address, with the site's name kept in the Host header and in TLS SNI, so
certificates are still verified against the name.
"""

from __future__ import annotations

import ipaddress

import httpx


class PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, address: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        try:
            self.address: str | None = str(ipaddress.ip_address(address))
        except ValueError:
            self.address = None  # the host did not resolve at the check: connect nowhere

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.address is None:
            raise httpx.ConnectError(
                f"{request.url.host} did not resolve when the call started", request=request
            )
        host = request.url.host
        request.url = request.url.copy_with(host=self.address)
        request.headers.setdefault("Host", host)  # httpx set it from the original URL
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        return await super().handle_async_request(request)
