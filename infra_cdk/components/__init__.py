"""Constructs of the stack, one per concern (security, storage, network, alerting, pipeline, monitoring)."""
