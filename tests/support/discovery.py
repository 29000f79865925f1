"""The envoy-data-plane discovery messages tests build requests with and decode responses with.

Imported here once (with the library's import-time warnings silenced) so tests never use the
server's own framing code to check the server.
"""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from envoy_data_plane.envoy.config.core.v3 import ControlPlane, Node
    from envoy_data_plane.envoy.service.discovery.v3 import (
        DeltaDiscoveryRequest,
        DeltaDiscoveryResponse,
        DiscoveryRequest,
        DiscoveryResponse,
        Resource,
    )
    from envoy_data_plane.google.protobuf import Any, Struct
    from envoy_data_plane.google.rpc import Status

__all__ = [
    "Any",
    "ControlPlane",
    "DeltaDiscoveryRequest",
    "DeltaDiscoveryResponse",
    "DiscoveryRequest",
    "DiscoveryResponse",
    "Node",
    "Resource",
    "Status",
    "Struct",
]
