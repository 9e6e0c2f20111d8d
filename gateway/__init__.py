"""Transports between callers and the engine: one shared call bridge, one folder each.

- ``bridge``: what every transport shares: engine events -> a media sink, the
  first-reason-wins end, observers, end reason -> status, the record and its
  recording, and the registry of calls in progress across transports.
- ``twilio``: the Twilio Media Streams protocol (sans-I/O), the WebSocket call,
  the carrier webhooks and the REST carrier.
- ``webrtc``: aiortc peer connections for browsers (and WhatsApp's media).
- ``whatsapp``: WhatsApp Business Calling: webhooks, Graph API, inbound and
  outbound calls over the WebRTC transport.
- ``simulated``: the built-in carrier and callee for tests and demos.
- ``carriers``: the outbound ``Carrier`` interface; ``calls`` and ``agents``: the
  stores a call needs before the control plane has a database.
"""
