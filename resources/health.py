"""Inbound health as Kuma's control plane keeps it for probed inbounds (universal HDS).

Kuma stamps every inbound that has a ``serviceProbe`` ``NotReady`` when the Dataplane is stored
(``dataplaneManager.setHealth``, pkg/core/managers/apis/dataplane/dataplane_manager.go) and flips it
when its sidecar reports over HDS (``tracker.OnEndpointHealthResponse`` / ``updateDataplane``,
pkg/hds/tracker/callbacks.go): an inbound is healthy iff the check of its workload port passed (or
was not reported) and Envoy itself is ready. Here that report is an input fed in at the edge, so the
files stay the user's and a health change takes the same path as a file change.

One deliberate difference: Kuma's tracker also flips inbounds *without* a probe between Ready and
NotReady by Envoy's own readiness, so a hand-written ``state: NotReady`` would become Ready. meshxds
keeps the file's state for those (Envoy not ready still takes them out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from meshxds.resources import model as m


@dataclass(frozen=True)
class HealthReport:
    """One sidecar's latest HDS report: workload port → healthy, and whether Envoy itself is ready."""

    ports: Mapping[int, bool] = field(default_factory=dict)
    envoy_ready: bool = True

    def key(self) -> tuple[tuple[tuple[int, bool], ...], bool]:
        """A comparable form (the report is an input: equal keys mean nothing to rebuild)."""
        return tuple(sorted(self.ports.items())), self.envoy_ready


def probed_health(inbound: m.Inbound, report: HealthReport | None) -> bool | None:
    """The health Kuma would store for ``inbound`` (None: leave the file's state alone)."""
    if inbound.state == m.InboundState.IGNORED:
        return None
    if inbound.service_probe is None:
        return False if report is not None and not report.envoy_ready else None
    if report is None:
        return False  # setHealth: NotReady until the first report says otherwise
    return report.ports.get(inbound.workload_port, True) and report.envoy_ready


def apply_health(dp: m.Dataplane, report: HealthReport | None) -> m.Dataplane:
    """``dp`` with each probed inbound's state and health as Kuma stores them; ``dp`` itself if nothing changes."""
    inbounds = list(dp.networking.inbound)
    changed = False
    for n, inbound in enumerate(inbounds):
        healthy = probed_health(inbound, report)
        if healthy is None:
            continue
        state = m.InboundState.READY if healthy else m.InboundState.NOT_READY
        if inbound.state == state and (
            inbound.service_probe is None or (inbound.health is not None and inbound.health.ready == healthy)
        ):
            continue  # Kuma's tracker only writes an inbound whose state flips
        # ``health.ready`` is written too, as Kuma does for proxies of 2.5 and older.
        inbounds[n] = inbound.model_copy(update={"state": state, "health": m.Health(ready=healthy)})
        changed = True
    if not changed:
        return dp
    networking = dp.networking.model_copy(update={"inbound": inbounds})
    return dp.model_copy(update={"spec": dp.spec.model_copy(update={"networking": networking})})


def apply_reports(dataplanes: tuple[m.Dataplane, ...], reports: Mapping[str, HealthReport]) -> tuple[m.Dataplane, ...]:
    """Every Dataplane of a load with its sidecar's latest report (or none yet) applied."""
    return tuple(apply_health(dp, reports.get(dp.node_id)) for dp in dataplanes)
