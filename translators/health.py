"""What a sidecar health-checks for the control plane: Kuma's HDS ``SnapshotGenerator``
(pkg/hds/tracker/healthcheck_generator.go).

Envoy's Health Discovery Service turns the sidecar into the prober of its own app: the control plane
sends a ``HealthCheckSpecifier`` naming endpoints and checks, Envoy runs them and reports each
endpoint's health every ``interval``. Kuma asks for a TCP check of the app behind every inbound with
a ``serviceProbe`` (cluster ``localhost:<workload port>``, so the report maps back to the inbound by
port) and an HTTP ``/ready`` check of Envoy's own admin (cluster ``kuma:envoy:admin``), so a draining
Envoy takes all its inbounds out. Pure: the HDS server calls this and never builds messages itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from meshxds.resources.model import Dataplane, ServiceProbe
from meshxds.translators import protos as pb
from meshxds.translators.clusters import app_bind
from meshxds.translators.dataplanes import interface
from meshxds.translators.dns import tp_enabled
from meshxds.translators.names import local_cluster_name

ENVOY_ADMIN_CLUSTER = "kuma:envoy:admin"  # envoy_names.GetEnvoyAdminClusterName
READY_PATH = "/ready"


@dataclass(frozen=True)
class HdsSettings:
    """Kuma's ``dp_server.DefaultHdsConfig``: report interval, regeneration interval and check defaults."""

    interval: timedelta = timedelta(seconds=5)  # how often Envoy reports health
    refresh_interval: timedelta = timedelta(seconds=10)  # how often a connected proxy's specifier is rebuilt
    timeout: timedelta = timedelta(seconds=2)
    check_interval: timedelta = timedelta(seconds=1)
    no_traffic_interval: timedelta = timedelta(seconds=1)
    healthy_threshold: int = 1
    unhealthy_threshold: int = 1


def health_check_specifier(dp: Dataplane, settings: HdsSettings = HdsSettings()) -> pb.HealthCheckSpecifier:
    """The specifier for one Dataplane: Envoy's own readiness, then each probed inbound's app, in inbound order.

    Envoy's admin is checked only when the Dataplane names its port (``networking.admin.port``): meshxds'
    sidecars pick their admin port at start, so Kuma's default of 9901 would probe nothing or another proxy.
    """
    checks: list[pb.ClusterHealthCheck] = []
    admin_port = (dp.networking.admin or {}).get("port")
    if isinstance(admin_port, int) and admin_port > 0:
        checks.append(_envoy_check(admin_port, settings))
    transparent = tp_enabled(dp)
    for inbound in dp.networking.inbound:
        probe = inbound.service_probe
        if probe is None:
            continue
        iface = interface(dp, inbound)
        check = pb.HealthCheck(
            timeout=_duration(probe.timeout, settings.timeout),
            interval=_duration(probe.interval, settings.check_interval),
            healthy_threshold=probe.healthy_threshold or settings.healthy_threshold,
            unhealthy_threshold=probe.unhealthy_threshold or settings.unhealthy_threshold,
            no_traffic_interval=settings.no_traffic_interval,
            tcp_health_check=pb.HealthCheckTcpHealthCheck(),
        )
        bind = app_bind(iface.workload_ip, transparent)
        checks.append(
            pb.ClusterHealthCheck(
                cluster_name=local_cluster_name(iface.workload_port),
                health_checks=[check],
                locality_endpoints=[_endpoints(iface.workload_ip, iface.workload_port)],
                upstream_bind_config=bind,
            )
        )
    return pb.HealthCheckSpecifier(cluster_health_checks=checks, interval=settings.interval)


def _envoy_check(port: int, settings: HdsSettings) -> pb.ClusterHealthCheck:
    check = pb.HealthCheck(
        timeout=settings.timeout,
        interval=settings.check_interval,
        healthy_threshold=settings.healthy_threshold,
        unhealthy_threshold=settings.unhealthy_threshold,
        no_traffic_interval=settings.no_traffic_interval,
        http_health_check=pb.HealthCheckHttpHealthCheck(path=READY_PATH),
    )
    return pb.ClusterHealthCheck(
        cluster_name=ENVOY_ADMIN_CLUSTER,
        health_checks=[check],
        locality_endpoints=[_endpoints("127.0.0.1", port)],
    )


def _endpoints(ip: str, port: int) -> pb.LocalityEndpoints:
    return pb.LocalityEndpoints(endpoints=[pb.Endpoint(address=pb.socket_address(ip, port))])


def _duration(value: str | None, default: timedelta) -> timedelta:
    """The probe's duration (validated by the model), else the default."""
    seconds = ServiceProbe.seconds(value)
    return timedelta(seconds=seconds) if seconds is not None else default
