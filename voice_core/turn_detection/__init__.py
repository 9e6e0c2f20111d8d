"""End of turn from the audio and the words, not the clock (Smart Turn v3.2 + text hints)."""
