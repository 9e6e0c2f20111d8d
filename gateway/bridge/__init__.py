"""The call bridge every transport shares: engine events -> a media sink, and one lifecycle.

A transport (``gateway.twilio``, ``gateway.webrtc``, and every one added later)
brings the caller's audio to the engine and implements two small interfaces
(``sink``): a ``MediaSink`` the agent's audio goes to (play a frame, clear,
mark the end of an utterance, how much is queued) and a ``CallTransport`` the
bridge stops and closes. Everything else about a call is written once here:

- ``call``: ``CallBridge``, one call's lifecycle: first reason wins, the
  engine-event ladder, observers, the recording, the record's finalisation;
- ``end_status``: which call status an end reason gives;
- ``registry``: ``CallRegistry``, the calls in progress across every transport;
- ``gateway``: ``TransportGateway``, what every call of one transport shares.
"""

from gateway.bridge.call import CallBridge
from gateway.bridge.end_status import end_status
from gateway.bridge.gateway import EventObserver, TransportGateway
from gateway.bridge.registry import CallRegistry, LiveCall
from gateway.bridge.sink import CallTransport, MediaSink

__all__ = [
    "CallBridge",
    "CallRegistry",
    "CallTransport",
    "EventObserver",
    "LiveCall",
    "MediaSink",
    "TransportGateway",
    "end_status",
]
