"""WebRTC transport: aiortc peer connections bridged to engine sessions.

- ``sdp``: sans-I/O checks and rewrites of offers (no audio, mDNS candidates).
- ``ice``: the ``RTCConfiguration`` from settings and the loopback-candidate switch.
- ``tokens``: short-lived single-use session tokens for public pages.
- ``media``: caller audio to 16 kHz frames, agent audio as a paced 48 kHz track.
- ``live_events``: engine events as data-channel JSON.
- ``call``: one call (peer connection + session + recording + record), and the gateway.
"""
