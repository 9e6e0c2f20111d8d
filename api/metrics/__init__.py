"""Prometheus metrics: what the process measures (``collector``) and where it is
served (``routes``: the app's ``/metrics`` behind a token, or a bind address of its own)."""
