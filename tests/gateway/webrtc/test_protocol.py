"""Sans-I/O pieces with plain strings: SDP checks, tokens, live events, webhooks, Graph bodies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gateway.conversation import LiveEvents
from gateway.webrtc.sdp import SdpError, check_offer, drop_mdns_candidates
from gateway.webrtc.tokens import SessionTokens, TokenError
from gateway.whatsapp.graph import action_body, answer_body, connect_body
from gateway.whatsapp.webhook import (
    CallConnect,
    CallIgnored,
    CallTerminate,
    WebhookError,
    parse_calls,
    sign,
    verification_challenge,
    verify_signature,
)
from tests.gateway.webrtc.graph_stub import shape_errors
from voice_core.events import (
    AgentAudio,
    AgentReply,
    AgentUtteranceEnd,
    CallEnded,
    ClearAudio,
    TranscriptFinal,
    TranscriptPartial,
)

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuv",
        "a=fingerprint:sha-256 00:11",
        "a=rtpmap:111 opus/48000/2",
        "a=candidate:1 1 udp 2122260223 3f2a-11.local 50000 typ host",
        "a=candidate:2 1 udp 2122260223 127.0.0.1 50001 typ host",
        "",
    ]
)


def test_check_offer_accepts_audio_and_counts_mdns():
    summary = check_offer(OFFER)
    assert summary.audio_sections == 1 and summary.mdns_candidates_dropped == 1


def test_drop_mdns_keeps_the_rest():
    out = drop_mdns_candidates(OFFER)
    assert ".local" not in out and "127.0.0.1 50001" in out and out.endswith("\r\n")


@pytest.mark.parametrize(
    ("sdp", "kind", "why"),
    [
        (OFFER, "answer", "'offer'"),
        (None, "offer", "non-empty"),
        ("x" * 70_000, "offer", "larger"),
        (OFFER.replace("m=audio 9", "m=audio 0"), "offer", "no audio"),
        (OFFER.replace("a=ice-ufrag:abcd\r\n", ""), "offer", "ICE"),
        (OFFER.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 9"), "offer", "media line"),
    ],
)
def test_check_offer_refuses(sdp, kind, why):
    with pytest.raises(SdpError, match=why):
        check_offer(sdp, kind)


def test_tokens_single_use_and_expiry():
    now = [100.0]
    tokens = SessionTokens(ttl_s=60, clock=lambda: now[0])
    grant = tokens.mint("org", "agt", {"first_name": "Ana"})
    assert tokens.redeem(grant.token).context == {"first_name": "Ana"}
    with pytest.raises(TokenError, match="already used"):
        tokens.redeem(grant.token)
    late = tokens.mint("org", "agt")
    now[0] += 61
    with pytest.raises(TokenError, match="expired"):
        tokens.redeem(late.token)
    with pytest.raises(TokenError, match="invalid"):
        tokens.redeem(123)


def test_live_events_states():
    live = LiveEvents()
    pcm = np.zeros(320, np.int16)
    assert live.encode(AgentAudio(pcm, 1)) == [{"type": "state", "state": "speaking"}]
    assert live.encode(AgentAudio(pcm, 1)) == []  # no repeats per frame
    assert live.encode(AgentUtteranceEnd(1, "Hi", False)) == [
        {"type": "state", "state": "listening"}
    ]
    assert live.encode(TranscriptPartial("what t"))[0]["final"] is False
    msgs = live.encode(TranscriptFinal("what time", 1))
    assert msgs[1] == {"type": "state", "state": "thinking"}
    live.encode(AgentAudio(pcm, 2))
    assert live.encode(ClearAudio(2)) == [{"type": "state", "state": "listening"}]
    assert live.encode(AgentReply("Nine", 1, True))[0]["interrupted"] is True
    assert live.encode(CallEnded("caller_hangup"))[-1] == {
        "type": "call_ended",
        "reason": "caller_hangup",
    }
    assert json.dumps(live.started("call_x"))  # JSON-safe


def test_signature_checks():
    body = b'{"object": "whatsapp_business_account", "entry": []}'
    verify_signature(body, sign(body, "s3cret"), "s3cret")
    for header, status in ((None, 401), ("sha1=00", 401), (sign(body, "other"), 403)):
        with pytest.raises(WebhookError) as err:
            verify_signature(body, header, "s3cret")
        assert err.value.status == status
    with pytest.raises(WebhookError) as err:
        verify_signature(body, sign(body, "s3cret"), None)
    assert err.value.status == 503


def test_verification_challenge():
    params = {"hub.mode": "subscribe", "hub.verify_token": "t", "hub.challenge": "42"}
    assert verification_challenge(params, "t") == "42"
    with pytest.raises(WebhookError):
        verification_challenge({**params, "hub.verify_token": "x"}, "t")


def _body(*calls: dict) -> bytes:
    value = {"metadata": {"phone_number_id": "pn1"}, "calls": list(calls)}
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "changes": [
                        {"field": "messages", "value": {}},
                        {"field": "calls", "value": value},
                    ]
                }
            ],
        }
    ).encode()


def test_parse_calls():
    events = parse_calls(
        _body(
            {"id": "w1", "from": "1", "to": "2", "event": "connect",
             "session": {"sdp_type": "offer", "sdp": "v=0"}},
            {"id": "w1", "event": "terminate", "status": "COMPLETED", "duration": 12},
            {"id": "w2", "event": "ringing"},
        )
    )
    assert events == [
        CallConnect("w1", "1", "2", "pn1", "offer", "v=0"),
        CallTerminate("w1", "pn1", "COMPLETED", 12.0),
        CallIgnored("w2", "ringing"),
    ]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON"),
        (b"[]", "object"),
        (json.dumps({"object": "page"}).encode(), "whatsapp_business_account"),
        (_body({"event": "connect"}), "id"),
        (_body({"id": "w", "event": "connect"}), "session"),
        (_body({"id": "w", "event": "connect", "session": {"sdp_type": "pranswer", "sdp": "v"}}),
         "sdp_type"),
    ],
)
def test_parse_calls_refuses(body, why):
    with pytest.raises(WebhookError, match=why) as err:
        parse_calls(body)
    assert err.value.status == 400


def test_graph_bodies_match_the_documented_shapes():
    assert shape_errors(answer_body("w", "pre_accept", "v=0\r\n")) == []
    assert shape_errors(answer_body("w", "accept", "v=0\r\n")) == []
    assert shape_errors(action_body("w", "terminate")) == []
    assert connect_body("+1555", "v=0")["session"] == {"sdp_type": "offer", "sdp": "v=0"}
    with pytest.raises(ValueError):
        answer_body("w", "terminate", "v=0")
