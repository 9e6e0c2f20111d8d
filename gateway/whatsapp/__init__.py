"""WhatsApp-style calling (WhatsApp Business Calling over the Cloud API).

- ``webhook``: sans-I/O signature check, verification challenge and parsing of
  the ``calls`` webhook into typed events.
- ``graph``: the Graph API client (``/{phone_number_id}/calls`` actions).
- ``line``: what inbound and outbound calls share (the connected calls'
  WhatsApp call id -> voxline call id, the end hook that POSTs terminate).
- ``calls``: the webhook side: answers ``connect`` offers, hands the events of
  calls we placed to the carrier.
- ``carrier``: business-initiated calls behind the ``Carrier`` interface.
- ``wiring``: ``build_whatsapp``, all of it put together once.
"""
