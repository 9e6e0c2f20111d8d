"""Vonage: NCCO connect to a WebSocket, the Voice API L16 stream, signed webhooks."""
