"""Plivo: answer XML with a bidirectional <Stream>, Audio Streams, outbound calls."""
