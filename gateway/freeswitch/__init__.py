"""FreeSWITCH ``mod_audio_fork`` and jambonz ``listen`` (the same protocol family):
``audio_fork`` (sans-I/O: JSON metadata, L16 frames, ``playAudio`` / ``killAudio``) and
``call`` (the gateways, one call per socket, and their routers)."""
