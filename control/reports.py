"""What connected sidecars report about themselves, kept as inputs of the next load.

Two reports reach the control plane over gRPC: a sidecar's HDS health (which probed app answers) and
its node metadata (the DNS port it wants its ``kuma:dns`` listener on). Kuma writes the first into the
stored Dataplane and keeps the second with the proxy; meshxds keeps both here and hands them to
``load_catalog``, so a report takes the same path as a file edit (load → translate → push) and the
servers never translate. ``dirty`` tells the service's watch loop that a reload is due.
"""

from __future__ import annotations

import logging
import time

from meshxds.codec.encode import encode_message
from meshxds.codec.wire import WireError
from meshxds.resources.health import HealthReport
from meshxds.resources.model import Dataplane
from meshxds.translators.health import HdsSettings, health_check_specifier
from meshxds.xds.nodemeta import dns_port

log = logging.getLogger("meshxds.reports")


class ProxyReports:
    """The latest HDS health and DNS port per node id; each change marks the next load due."""

    def __init__(self, settings: HdsSettings | None = None) -> None:
        self.settings = settings or HdsSettings()
        self.health: dict[str, HealthReport] = {}
        self.dns_ports: dict[str, int] = {}
        self.dirty = False
        self.changed_at = 0.0  # monotonic time of the last change (how long a report took to reach Envoy)
        self._specs: dict[str, tuple[Dataplane, bytes]] = {}

    def report_health(self, node_id: str, report: HealthReport) -> bool:
        """Keep ``report``; True when it changes what the node's inbounds look like."""
        old = self.health.get(node_id)
        if old is not None and old.key() == report.key():
            return False
        self.health[node_id] = report
        log.info("%s health: %s", node_id, describe(report))
        return self._mark()

    def report_dns_port(self, node_id: str, port: int) -> bool:
        """Keep the DNS port a node's metadata asked for (0: none); True when it changed."""
        if self.dns_ports.get(node_id, 0) == port:
            return False
        if port:
            self.dns_ports[node_id] = port
        else:
            self.dns_ports.pop(node_id, None)
        return self._mark()

    def report_node(self, node_id: str, node: bytes) -> bool:
        """An accepted ADS stream's encoded Node: its metadata may ask for a DNS listener; True when that changed."""
        try:
            port = dns_port(node)
        except WireError as exc:
            log.warning("%s: unreadable node metadata: %s", node_id, exc)
            return False
        return self.report_dns_port(node_id, port)

    def _mark(self) -> bool:
        self.dirty = True
        self.changed_at = time.monotonic()
        return True

    def forget_others(self, node_ids: set[str]) -> None:
        """Drop what nodes no longer in the input reported (Kuma deletes their Dataplane, and its health with it)."""
        for table in (self.health, self.dns_ports, self._specs):
            for node_id in [n for n in table if n not in node_ids]:
                del table[node_id]

    def take(self) -> tuple[dict[str, HealthReport], dict[str, int]]:
        """Copies of both for a load; clears ``dirty`` (a report arriving during the load marks it again)."""
        self.dirty = False
        return dict(self.health), dict(self.dns_ports)

    def specifier(self, dp: Dataplane | None) -> bytes | None:
        """The encoded HealthCheckSpecifier for ``dp`` (None: unknown node), re-encoded only when ``dp`` changed."""
        if dp is None:
            return None
        hit = self._specs.get(dp.node_id)
        if hit is None or hit[0] is not dp:
            hit = (dp, encode_message(health_check_specifier(dp, self.settings)))
            self._specs[dp.node_id] = hit
        return hit[1]


def describe(report: HealthReport) -> str:
    ports = ", ".join(f"{port} {'up' if ok else 'down'}" for port, ok in sorted(report.ports.items()))
    return f"{ports or 'no probes'}; envoy {'ready' if report.envoy_ready else 'not ready'}"
