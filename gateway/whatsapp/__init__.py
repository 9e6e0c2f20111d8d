"""WhatsApp-style calling (WhatsApp Business Calling over the Cloud API).

- ``webhook``: sans-I/O signature check, verification challenge and parsing of
  the ``calls`` webhook into typed events.
- ``graph``: the Graph API client (``/{phone_number_id}/calls`` actions).
- ``calls``: answers ``connect`` offers over the WebRTC gateway and keeps the
  WhatsApp call id <-> voxline call id mapping.
"""
