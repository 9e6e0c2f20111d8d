"""Local HTTP servers standing in for clouds that cannot run here (they check every
request against the public API's documented shape and auth, and answer like it)."""
