"""Exotel: the Voicebot applet's media stream."""
