"""The SDK's signature check (``voxline.signing``) against the server's signer
(``api.postcall.signing``): two copies of one wire format, held together here."""

from __future__ import annotations

import time

import pytest

from api.postcall import signing as server
from voxline import signing as sdk
from voxline import verify_signature

BODY = b'{"event": "call.completed", "call_id": "c_1"}'


def test_same_constants() -> None:
    for name in ("SIGNATURE_HEADER", "IDEMPOTENCY_HEADER", "EVENT_HEADER", "DEFAULT_TOLERANCE_S"):
        assert getattr(sdk, name) == getattr(server, name), name


def test_the_package_exports_the_sdk_copy() -> None:
    assert verify_signature is sdk.verify_signature


@pytest.mark.parametrize(
    ("signer", "verifier"),
    [(server.sign, sdk.verify_signature), (sdk.sign, server.verify_signature)],
    ids=["server-signs-sdk-verifies", "sdk-signs-server-verifies"],
)
def test_one_signs_the_other_verifies(signer, verifier) -> None:  # type: ignore[no-untyped-def]
    header = signer("whsec_test", BODY)
    assert verifier("whsec_test", header, BODY)
    assert verifier("whsec_test", header, BODY.decode())
    assert not verifier("whsec_test", header, BODY.replace(b"completed", b"failed"))
    assert not verifier("whsec_other", header, BODY)
    assert not verifier("whsec_test", None, BODY)
    assert not verifier("", header, BODY)
    assert not verifier("whsec_test", "t=abc,v1=00", BODY)
    old = signer("whsec_test", BODY, timestamp=int(time.time()) - 3600)
    assert not verifier("whsec_test", old, BODY)  # replayed an hour later
    assert verifier("whsec_test", old, BODY, tolerance_s=0)
    assert verifier("whsec_test", old, BODY, now=time.time() - 3600)
    # While a secret rotates, the server sends one v1 per secret.
    both = (
        signer("whsec_old", BODY, timestamp=1_700_000_000)
        + ",v1="
        + signer("whsec_new", BODY, timestamp=1_700_000_000).split("v1=")[1]
    )
    for secret in ("whsec_old", "whsec_new"):
        assert verifier(secret, both, BODY, now=1_700_000_000)


def test_same_header_for_the_same_input() -> None:
    assert sdk.sign("s", BODY, timestamp=1_700_000_000) == server.sign(
        "s", BODY, timestamp=1_700_000_000
    )
    header = "t=1700000000, v1=ab ,v1=,v2=cd,t=x"
    assert sdk.parse_header(header) == server.parse_header(header)
