"""HTTP Basic credentials on a PBX's WebSocket upgrade, checked in constant time.

Every PBX here can send them when it opens the media socket: Asterisk's
``websocket_client.conf`` (``username``/``password``), FreeSWITCH mod_audio_fork
(``MOD_AUDIO_BASIC_AUTH_USERNAME``/``_PASSWORD`` channel variables) and jambonz
(``wsAuth``). When a transport is configured with credentials, a socket without the
right ones is refused before it is accepted.

Transport-neutral (a candidate for ``gateway.bridge``).
"""

from __future__ import annotations

import base64
import binascii
import hmac


def basic_auth_ok(header: str | None, username: str, password: str) -> bool:
    """True if ``header`` (an ``Authorization`` value) carries exactly these credentials."""
    if not header:
        return False
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    given_user, sep, given_password = decoded.partition(b":")
    if not sep:
        return False
    # Compare both, always, so timing says nothing about which one was wrong.
    user_ok = hmac.compare_digest(given_user, username.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    return user_ok and password_ok
