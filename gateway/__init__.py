"""Transports between callers and the engine.

Phone: the Twilio Media Streams protocol (sans-I/O in ``media_stream``), the
WebSocket bridge that feeds a call into a ``CallSession`` (``phone_call``), the
carrier webhooks (``twilio_routes``), outbound carriers (``carriers``,
``twilio_carrier``, ``simulated_carrier``) and the stores a call needs before the
control plane has a database (``calls``, ``agents``).
"""
