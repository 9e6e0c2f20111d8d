"""Plivo's request signature V3 (``X-Plivo-Signature-V3`` with ``-V3-Nonce``).

base64(HMAC-SHA256(auth token, base + "." + nonce)), where for a POST ``base`` is the
URL Plivo called without its query, then ``?`` and the query parameters sorted
(``k=v`` joined by ``&``), then a ``.`` if there was a query, then every POST
parameter sorted by name as name + value (a repeated name's values sorted too).
Plivo's own SDK builds it that way, including its quirk: a POST to a URL without a
query still gets the ``?``. The header may hold several signatures separated by
commas (one per auth token during a rotation); one match is enough.

The URL is the one Plivo called, so behind a proxy it is rebuilt from the configured
public URL. Sans-I/O: strings in, a verdict out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Plivo-Signature-V3"
NONCE_HEADER = "X-Plivo-Signature-V3-Nonce"


def _grouped(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in items:
        out.setdefault(name, []).append(value)
    return out


def signed_base(url: str, params: Iterable[tuple[str, str]]) -> str:
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query = _grouped(parse_qsl(parts.query, keep_blank_values=True))
    posted = _grouped(params)
    query_text = "&".join(
        f"{name}={value}" for name in sorted(query) for value in sorted(query[name])
    )
    if query_text or posted:
        base += "?" + query_text
    if query_text and posted:
        base += "."
    return base + "".join(name + value for name in sorted(posted) for value in sorted(posted[name]))


def plivo_signature(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], nonce: str
) -> str:
    data = f"{signed_base(url, params)}.{nonce}".encode()
    return base64.b64encode(hmac.new(auth_token.encode(), data, hashlib.sha256).digest()).decode()


def valid_plivo_signature(
    auth_token: str,
    url: str,
    params: Iterable[tuple[str, str]],
    signature: str | None,
    nonce: str | None,
) -> bool:
    if not signature or not nonce:
        return False
    expected = plivo_signature(auth_token, url, params, nonce).encode()
    return any(hmac.compare_digest(expected, s.strip().encode()) for s in signature.split(","))
