"""Twilio's request signature (``X-Twilio-Signature``), as Twilio documents it.

base64(HMAC-SHA1(auth token, URL + every POST parameter, sorted by name, as name + value)).
The URL is the full one Twilio called (scheme, host, path and query string), so behind
a proxy it is rebuilt from the configured public URL, never from the Host header the
proxy forwards. Sans-I/O: strings in, a verdict out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

SIGNATURE_HEADER = "X-Twilio-Signature"


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    # A stable sort by name keeps a repeated name's values in the order they were sent.
    data = url + "".join(name + value for name, value in sorted(params, key=lambda p: p[0]))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_twilio_signature(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str | None
) -> bool:
    if not signature:
        return False
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.encode())
