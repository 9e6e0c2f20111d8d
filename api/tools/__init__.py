"""Agents' tools on the server side: the egress-checked fetch the engine is given
(``fetch``) and which secrets and targets a tenant's tools may use (``policy``)."""
