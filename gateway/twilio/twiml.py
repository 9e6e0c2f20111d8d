"""TwiML answers for the carrier's voice webhook."""

from __future__ import annotations

from xml.etree import ElementTree as ET


def connect_stream(stream_url: str, parameters: dict[str, str]) -> str:
    """``<Connect><Stream>``: a bidirectional media stream to ``stream_url``.

    ``<Parameter>``s come back to us in the stream's ``start.customParameters``.
    """
    response = ET.Element("Response")
    connect = ET.SubElement(response, "Connect")
    stream = ET.SubElement(connect, "Stream", url=stream_url)
    for name, value in parameters.items():
        ET.SubElement(stream, "Parameter", name=name, value=value)
    return _document(response)


def dial(to: str) -> str:
    """``<Dial>``: what a live call is updated with to transfer it, to a number
    (``<Number>``) or a SIP URI (``<Sip>``). The media stream ends with the old TwiML."""
    response = ET.Element("Response")
    target = ET.SubElement(response, "Dial")
    noun = ET.SubElement(target, "Sip" if to.lower().startswith(("sip:", "sips:")) else "Number")
    noun.text = to
    return _document(response)


def reject(reason: str = "rejected") -> str:
    response = ET.Element("Response")
    ET.SubElement(response, "Reject", reason=reason)
    return _document(response)


def _document(root: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")
