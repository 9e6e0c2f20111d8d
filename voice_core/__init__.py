"""voxline's streaming conversation engine.

Knows nothing of HTTP or carriers: a transport feeds caller audio frames into a
:class:`~voice_core.session.CallSession` and reads agent audio and events out.
"""
