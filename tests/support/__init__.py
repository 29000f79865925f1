"""Shared test helpers: real Envoy processes, free ports, loopback HTTP servers, polling."""
