"""Whatever reaches the WhatsApp webhook (body, signature header, subscription query), the
sans-I/O handling answers with events or WebhookError (a 4xx/503): never another exception."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.whatsapp.webhook import (
    WebhookError,
    parse_calls,
    sign,
    verification_challenge,
    verify_signature,
)
from tests.gateway.fuzz import FUZZ, HUGE_INTS, json_values

calls = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["wacid.1"]) | json_values,
        "event": st.sampled_from(["connect", "terminate", "other"]) | json_values,
        "from": json_values,
        "session": st.fixed_dictionaries(
            {},
            optional={
                "sdp_type": st.sampled_from(["offer", "answer"]) | json_values,
                "sdp": st.just("v=0\r\n") | json_values,
            },
        )
        | json_values,
        "duration": st.integers() | HUGE_INTS | st.floats() | json_values,
    },
)
statuses = st.fixed_dictionaries(
    {},
    optional={
        "id": st.just("wacid.1") | json_values,
        "type": st.sampled_from(["call", "message"]) | json_values,
        "status": st.sampled_from(["RINGING", "ringing"]) | json_values,
    },
)
values = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries({}, optional={"phone_number_id": json_values})
        | json_values,
        "calls": st.lists(calls, max_size=3) | json_values,
        "statuses": st.lists(statuses, max_size=3) | json_values,
    },
)
bodies = st.fixed_dictionaries(
    {
        "object": st.sampled_from(["whatsapp_business_account"]) | json_values,
        "entry": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "changes": st.lists(
                        st.fixed_dictionaries(
                            {"field": st.sampled_from(["calls", "messages"]), "value": values}
                        ),
                        max_size=2,
                    )
                    | json_values
                },
            ),
            max_size=2,
        )
        | json_values,
    }
).map(lambda body: json.dumps(body).encode())


@FUZZ
@example(b"[" * 100_000)  # nesting deeper than the parser's recursion limit
@example(
    b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "calls",'
    b' "value": {"calls": [{"id": "w", "event": "terminate", "duration": 1'
    + b"0" * 400
    + b"}]}}]}]}"
)  # a duration float() cannot hold
@given(bodies | st.binary(max_size=200))
def test_any_body_raises_only_webhook_errors(body: bytes) -> None:
    try:
        parse_calls(body)
    except WebhookError as exc:
        assert 400 <= exc.status < 500


headers = (
    st.none()
    | st.text(max_size=80)
    | st.just("sha256=")
    | st.text(max_size=70).map(lambda t: "sha256=" + t)
)


@FUZZ
@example(b"{}", "sha256=\u00e9", "secret")  # a header byte over 0x7f (ISO-8859-1 decoded)
@given(st.binary(max_size=64), headers, st.none() | st.just("secret"))
def test_any_signature_header_raises_only_webhook_errors(
    body: bytes, header: str | None, secret: str | None
) -> None:
    try:
        verify_signature(body, header, secret)
    except WebhookError as exc:
        assert exc.status in (401, 403, 503)
        return
    assert secret is not None and header is not None
    assert header.strip() == sign(body, secret)


@FUZZ
@example({"hub.mode": "subscribe", "hub.verify_token": "\u00e9", "hub.challenge": "1"}, "tok")
@given(
    st.dictionaries(
        st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge"]) | st.text(max_size=5),
        st.sampled_from(["subscribe", "tok"]) | st.text(max_size=10),
    ),
    st.none() | st.just("tok"),
)
def test_any_subscription_check_raises_only_webhook_errors(
    params: dict[str, str], verify_token: str | None
) -> None:
    try:
        challenge = verification_challenge(params, verify_token)
    except WebhookError as exc:
        assert exc.status in (400, 403, 503)
        return
    assert challenge == params["hub.challenge"] and params["hub.verify_token"] == verify_token
