"""Durable asynchronous jobs: the service on top of the speech path and their table."""
