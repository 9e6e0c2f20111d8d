"""Asterisk's WebSocket channel: ``protocol`` (sans-I/O control messages and media),
``media_format`` (the formats a channel may carry, and their codecs) and ``call`` (the
gateway, one call per socket, and the router Asterisk's websocket client dials)."""
