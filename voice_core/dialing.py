"""What a call may dial on its own: transfer targets and DTMF digits, checked.

Both reach a carrier that will dial or play them, so both are checked where they
enter (the API, an agent's config) and again by whoever acts on them.
"""

from __future__ import annotations

import re

# E.164: a plus, a non-zero country digit, at most 15 digits in all.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# sip:user@host[:port][;params], no spaces, quotes or angle brackets (they would break
# out of the TwiML / JSON a carrier gets).
_SIP = re.compile(
    r"sips?:[A-Za-z0-9_.!~*'()%&=+$,;?/-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?(;[A-Za-z0-9=;_.-]*)?"
)
MAX_SIP_URI = 256

# Digits a carrier plays into the call: 0-9 * #, and w / W (Twilio's half-second and
# one-second pauses, which an IVR needs between menu levels).
_DIGITS = re.compile(r"[0-9*#wW]+")
MAX_DIGITS = 64


def check_transfer_target(to: str) -> str:
    """``to`` if it is an E.164 number or a sip:/sips: URI; ValueError says why not."""
    if _E164.fullmatch(to):
        return to
    if to.lower().startswith(("sip:", "sips:")):
        if len(to) <= MAX_SIP_URI and _SIP.fullmatch(to):
            return to
        raise ValueError(f"not a valid SIP URI (sip:user@host, at most {MAX_SIP_URI} characters)")
    raise ValueError("must be an E.164 number (+15551234567) or a sip: URI")


def check_dtmf_digits(digits: str) -> str:
    """``digits`` if a carrier can play them; ValueError says why not."""
    if not digits or len(digits) > MAX_DIGITS:
        raise ValueError(f"must be 1 to {MAX_DIGITS} characters")
    if not _DIGITS.fullmatch(digits):
        raise ValueError("may hold only 0-9, *, # and w/W (pauses)")
    return digits
