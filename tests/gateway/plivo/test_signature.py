"""X-Plivo-Signature-V3, checked against values computed the way Plivo's SDK computes them."""

from __future__ import annotations

import base64
import hashlib
import hmac

from gateway.plivo.signature import plivo_signature, signed_base, valid_plivo_signature

TOKEN = "MzY4NTNmYjIzZjU4MzE4ODM2YjA3ZjFkYjE4ZWU5"
NONCE = "05429567804466091622"
PARAMS = [("To", "+15550001111"), ("From", "+13125550100"), ("CallUUID", "abc-123")]


def by_hand(base: str) -> str:
    digest = hmac.new(TOKEN.encode(), f"{base}.{NONCE}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_the_signed_string_follows_plivos_sdk() -> None:
    # No query: the SDK still appends '?', then the sorted POST parameters as name+value.
    url = "https://voice.example.test/plivo/answer"
    assert signed_base(url, PARAMS) == (url + "?CallUUIDabc-123From+13125550100To+15550001111")
    # A query: sorted k=v joined by '&', a '.', then the POST parameters.
    url = "https://voice.example.test/plivo/answer?z=2&call_id=call_1"
    assert signed_base(url, PARAMS) == (
        "https://voice.example.test/plivo/answer?call_id=call_1&z=2."
        "CallUUIDabc-123From+13125550100To+15550001111"
    )
    assert plivo_signature(TOKEN, url, PARAMS, NONCE) == by_hand(signed_base(url, PARAMS))


def test_good_bad_and_missing_signatures() -> None:
    url = "https://voice.example.test/plivo/answer?call_id=call_1"
    good = plivo_signature(TOKEN, url, PARAMS, NONCE)
    assert valid_plivo_signature(TOKEN, url, PARAMS, good, NONCE)
    assert valid_plivo_signature(TOKEN, url, PARAMS, f"bogus, {good}", NONCE)  # rotation
    assert not valid_plivo_signature(TOKEN, url, [*PARAMS, ("Extra", "1")], good, NONCE)
    assert not valid_plivo_signature(TOKEN, url + "&x=1", PARAMS, good, NONCE)
    assert not valid_plivo_signature(TOKEN, url, PARAMS, good, NONCE + "0")
    assert not valid_plivo_signature("other-token", url, PARAMS, good, NONCE)
    assert not valid_plivo_signature(TOKEN, url, PARAMS, None, NONCE)
    assert not valid_plivo_signature(TOKEN, url, PARAMS, good, None)
