"""Asterisk AudioSocket: ``protocol`` (sans-I/O, bytes in, events out) and ``server``
(the asyncio TCP server, one call per connection, the agent's audio paced at 20 ms)."""
