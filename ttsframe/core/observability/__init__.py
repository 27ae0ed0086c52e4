"""Metrics, traces, the request id of log lines, and what spans must not carry."""
