"""Telnyx: Call Control webhooks, media streaming in bidirectional RTP mode, outbound calls."""
