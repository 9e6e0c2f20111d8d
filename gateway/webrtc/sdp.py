"""Sans-I/O checks on SDP offers before any peer connection exists.

Why here and not in aiortc: aiortc raises assorted exceptions (ValueError,
KeyError, IndexError) deep inside ``setRemoteDescription`` for bad input, after a
peer connection and its ICE agent were created. Checking first gives the caller
a clear 4xx that names the problem, and starts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SDP_BYTES = 64_000  # a browser's audio+data offer is ~3-6 kB; this is generous


class SdpError(ValueError):
    """An offer we will not answer; the message says why."""


@dataclass(frozen=True)
class OfferSummary:
    audio_sections: int
    has_data_channel: bool
    mdns_candidates_dropped: int


def _lines(sdp: str) -> list[str]:
    return [line for line in sdp.replace("\r\n", "\n").split("\n") if line]


def check_offer(sdp: object, sdp_type: object = "offer") -> OfferSummary:
    """Raise ``SdpError`` unless ``sdp`` is an offer we can answer with audio."""
    if sdp_type != "offer":
        raise SdpError(f"type must be 'offer', got {sdp_type!r}")
    if not isinstance(sdp, str) or not sdp.strip():
        raise SdpError("sdp must be a non-empty string")
    try:
        size = len(sdp.encode())
    except UnicodeEncodeError:  # a lone surrogate: JSON can carry one, SDP text cannot
        raise SdpError("sdp is not valid Unicode text (a lone surrogate)") from None
    if size > MAX_SDP_BYTES:
        raise SdpError(f"sdp larger than {MAX_SDP_BYTES} bytes")
    lines = _lines(sdp)
    if lines[0] != "v=0":
        raise SdpError("sdp must start with 'v=0'")
    for line in lines:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"malformed sdp line {line[:40]!r}")
    media = [line for line in lines if line.startswith("m=")]
    audio = []
    for line in media:
        parts = line[2:].split()
        if len(parts) < 4:
            raise SdpError(f"malformed media line {line[:60]!r}")
        if parts[0] == "audio" and parts[1] != "0":  # port 0 = rejected section
            audio.append(line)
    if not audio:
        raise SdpError("offer has no audio section (m=audio)")
    if not any("opus/48000" in line.lower() for line in lines if line.startswith("a=rtpmap:")):
        raise SdpError("offer has no Opus codec (a=rtpmap:... opus/48000)")
    if not any(line.startswith("a=fingerprint:") for line in lines):
        raise SdpError("offer has no DTLS fingerprint (a=fingerprint)")
    if not any(line.startswith("a=ice-ufrag:") for line in lines):
        raise SdpError("offer has no ICE credentials (a=ice-ufrag)")
    return OfferSummary(
        audio_sections=len(audio),
        has_data_channel=any(line.startswith("m=application") for line in media),
        mdns_candidates_dropped=sum(1 for line in lines if _is_mdns_candidate(line)),
    )


def _is_mdns_candidate(line: str) -> bool:
    # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
    if not line.startswith("a=candidate:"):
        return False
    parts = line.split()
    return len(parts) > 4 and parts[4].lower().endswith(".local")


def drop_mdns_candidates(sdp: str) -> str:
    """Remove ``.local`` host candidates: resolving them makes aioice send mDNS
    multicast on the LAN, and a peer hiding its address behind mDNS offers other
    candidates (srflx, relay, or plain IPs with Chromium's mDNS feature off)."""
    eol = "\r\n" if "\r\n" in sdp else "\n"
    kept = [line for line in sdp.split(eol) if not _is_mdns_candidate(line)]
    return eol.join(kept)
