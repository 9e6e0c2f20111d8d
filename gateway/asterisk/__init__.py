"""Asterisk transports, each on the shared call bridge.

- ``audiosocket``: AudioSocket (raw TCP, 3-byte header): the sans-I/O protocol and an
  asyncio TCP server whose calls pace the agent's audio themselves.
- ``websocket_channel``: the WebSocket channel driver (``chan_websocket``, Asterisk
  20.16 / 21.11 / 22.6 / 23+): the sans-I/O protocol, its formats, and the WebSocket
  endpoint Asterisk dials.

The modules at this level are transport-neutral pieces the PBX transports share
(FreeSWITCH's too): ``call_start`` (record and agent for a call a PBX hands us),
``pumps``, ``websocket_pump``, ``playout_clock`` and ``basic_auth``.
"""
