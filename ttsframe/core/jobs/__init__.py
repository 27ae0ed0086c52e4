"""Durable asynchronous jobs: the service on top of the speech path, their table, and the
records the service reports (a job's state, the queue's counts)."""
