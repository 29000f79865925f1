"""What a Kuma zone control plane stamps on a Dataplane when it stores it (``dataplane_manager.go``).

``setInboundsClusterTag`` sets ``kuma.io/zone: <zone>`` on every inbound (overwriting a value the user
gave), except on tag-less inbounds of an Exclusive mesh. The tag then shows in inbound listener
metadata and endpoint metadata, and can be selected on, exactly as under Kuma.
"""

from __future__ import annotations

from meshxds.resources import model as m


def stamp_zone(dp: m.Dataplane, zone: str, mode: m.MeshServicesMode) -> m.Dataplane:
    """``dp`` with the zone tag on its inbounds (the same object when nothing changes)."""
    skip_tagless = mode == m.MeshServicesMode.EXCLUSIVE
    inbounds = []
    changed = False
    for inbound in dp.networking.inbound:
        if (not inbound.tags and skip_tagless) or inbound.tags.get(m.ZONE_TAG) == zone:
            inbounds.append(inbound)
            continue
        inbounds.append(inbound.model_copy(update={"tags": {**inbound.tags, m.ZONE_TAG: zone}}))
        changed = True
    if not changed:
        return dp
    networking = dp.networking.model_copy(update={"inbound": inbounds})
    return dp.model_copy(update={"spec": dp.spec.model_copy(update={"networking": networking})})
