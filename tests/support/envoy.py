"""Real Envoy processes for tests (the implementation is shared with the demo)."""

from meshxds.demo.sidecar import Envoy, envoy_binary, poll

__all__ = ["Envoy", "envoy_binary", "poll"]
