"""API key management (list, scope, revoke), per-key rate limits, per-organization limits
and the rotatable webhook signing secret."""
