"""Whatever a browser (or anyone) posts as an offer, the SDP checks answer with an
OfferSummary or SdpError (a 4xx naming the problem): never another exception."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.webrtc.sdp import SdpError, check_offer, drop_mdns_candidates
from tests.gateway.fuzz import FUZZ, json_values

LINES = [
    "v=0",
    "o=- 1 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "m=audio 0 UDP/TLS/RTP/SAVPF 111",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "m=audio",
    "a=rtpmap:111 opus/48000/2",
    "a=fingerprint:sha-256 AB:CD",
    "a=ice-ufrag:abcd",
    "a=candidate:1 1 udp 2122260223 abc.local 5000 typ host",
    "a=candidate:1",
    "x",
    "=",
    "",
]
offers = st.lists(st.sampled_from(LINES) | st.text(max_size=30), max_size=14).flatmap(
    lambda lines: st.sampled_from(["\r\n", "\n", "\r"]).map(lambda eol: eol.join(lines))
)


@FUZZ
@example("v=0\r\n\ud800", "offer")  # a lone surrogate: JSON can carry one, UTF-8 cannot
@given(offers | st.text() | json_values, st.sampled_from(["offer", "answer"]) | json_values)
def test_any_offer_raises_only_sdp_errors(sdp: object, sdp_type: object) -> None:
    try:
        summary = check_offer(sdp, sdp_type)
    except SdpError:
        return
    assert summary.audio_sections >= 1
    assert isinstance(sdp, str)
    kept = drop_mdns_candidates(sdp)
    assert ".local " not in kept or summary.mdns_candidates_dropped == 0
