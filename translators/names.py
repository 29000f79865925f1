"""Kuma 2.14's names for Envoy resources (spec §3.4), so dumps line up with Kuma's goldens.

Legacy ("destination") names key the endpoint map and name clusters, CLAs, virtual hosts and stat
prefixes; KRIs name HTTP route configurations and tag outbound listeners.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping

from meshxds.resources.model import SERVICE_TAG, MeshMultiZoneService, MeshService

MS_SHORT = "msvc"
MZMS_SHORT = "mzsvc"

_ILLEGAL_STAT_CHARS = re.compile(r"[^a-zA-Z0-9_\-]")


def ms_cluster_name(ms: MeshService, port: int) -> str:
    """``<mesh>_<displayName>_<namespace>_<zone>_msvc_<port>`` (``destinationname.ResolveLegacyFromKRI``)."""
    return f"{ms.mesh}_{ms.display_name}_{ms.namespace}_{ms.zone}_{MS_SHORT}_{port}"


def mzms_cluster_name(mzms: MeshMultiZoneService, port: int) -> str:
    """``<mesh>_<name>___mzsvc_<port>``: a global resource, so namespace and zone are empty."""
    return f"{mzms.mesh}_{mzms.display_name}___{MZMS_SHORT}_{port}"


def ms_kri(ms: MeshService, section: str = "") -> str:
    """``kri_msvc_<mesh>_<zone>_<namespace>_<name>_<sectionName>``."""
    return f"kri_{MS_SHORT}_{ms.mesh}_{ms.zone}_{ms.namespace}_{ms.display_name}_{section}"


def mzms_kri(mzms: MeshMultiZoneService, section: str = "") -> str:
    return f"kri_{MZMS_SHORT}_{mzms.mesh}___{mzms.display_name}_{section}"


def cluster_name(res: MeshService | MeshMultiZoneService, port: int) -> str:
    return ms_cluster_name(res, port) if isinstance(res, MeshService) else mzms_cluster_name(res, port)


def kri(res: MeshService | MeshMultiZoneService, section: str = "") -> str:
    return ms_kri(res, section) if isinstance(res, MeshService) else mzms_kri(res, section)


def legacy_cluster_name(tags: Mapping[str, str]) -> str:
    """Kuma's ``Tags.DestinationClusterName``: the service, or ``<service>-<sha256(sorted k+v)[:8] hex>``."""
    service = tags[SERVICE_TAG]
    if len(tags) == 1:
        return service
    h = hashlib.sha256()
    for k in sorted(tags):
        h.update(k.encode())
        h.update(tags[k].encode())
    return f"{service}-{h.digest()[:8].hex()}"


def legacy_route_name(service: str) -> str:
    """``envoy_names.GetOutboundRouteName``: route config of a legacy HTTP outbound."""
    return f"outbound:{service}"


def outbound_listener_name(address: str, port: int) -> str:
    return f"outbound:{address}:{port}"


def inbound_listener_name(address: str, port: int) -> str:
    return f"inbound:{address}:{port}"


def local_cluster_name(port: int) -> str:
    """``envoy_names.GetLocalClusterName``: the app behind an inbound, by its port."""
    return f"localhost:{port}"


def stat_name(name: str) -> str:
    """Kuma's ``SanitizeMetric``: characters Envoy stats dislike become ``_``."""
    return _ILLEGAL_STAT_CHARS.sub("_", name)


def matches_hash(matches_json: str) -> str:
    """Kuma's ``HashMatches``: base64(sha256(json.Marshal(matches))), the name of a route without a real origin."""
    return base64.b64encode(hashlib.sha256(matches_json.encode()).digest()).decode()
