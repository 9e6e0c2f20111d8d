"""WebRTC transport: aiortc peer connections bridged to engine sessions.

- ``sdp``: sans-I/O checks and rewrites of offers (no audio, mDNS candidates).
- ``ice``: the ``RTCConfiguration`` from settings and the loopback-candidate switch.
- ``tokens``: short-lived single-use session tokens for public pages.
- ``media``: caller audio to 16 kHz frames, agent audio as a paced 48 kHz track.
- ``call``: one call (its peer connection as the bridge's media sink), and the gateway.
"""
