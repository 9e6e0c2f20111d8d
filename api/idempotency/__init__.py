"""Idempotency-Key on the POSTs that create something: a retry replays, never repeats."""
