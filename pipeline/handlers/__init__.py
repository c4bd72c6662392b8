"""Lambda entry points: thin adapters from an AWS event to a service in `pipeline.services`."""
