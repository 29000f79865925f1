"""Envoy's Health Discovery Service on grpc.aio: Kuma's HDS server and tracker (pkg/hds/server/server.go,
pkg/hds/tracker/callbacks.go), served beside ADS on the same gRPC server.

A sidecar whose bootstrap has ``hds_config`` opens ``StreamHealthCheck`` and sends a
``HealthCheckRequest`` (with its Node); the server answers with the proxy's ``HealthCheckSpecifier``,
re-checks it every ``refresh`` seconds (Kuma's watchdog, ``RefreshInterval``) and sends it again when it
changed. Envoy then runs the checks and sends an ``EndpointHealthResponse`` every specifier interval;
each one becomes a ``HealthReport`` (workload port → healthy, plus Envoy's own readiness) handed to
``on_report``. The server neither builds specifiers nor changes state: ``specifier`` (encoded bytes, or
None for an unknown node) and ``on_report`` come from the service that owns the catalog.

Messages are read with the wire walker, not decoded: the first request carries Envoy's large Node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from meshxds.codec.wire import WireError, fields
from meshxds.resources.health import HealthReport
from meshxds.xds.wire import node_id

log = logging.getLogger("meshxds.hds")

SERVICE = "envoy.service.health.v3.HealthDiscoveryService"
ENVOY_ADMIN_CLUSTERS = ("kuma:envoy:admin", "system_envoy_admin")  # legacy and unified names
LOCAL_CLUSTER_PREFIX = "localhost:"
# envoy.config.core.v3.HealthStatus: Kuma counts UNKNOWN as healthy (a check that has not run yet).
HEALTHY_STATUSES = (0, 1)  # UNKNOWN, HEALTHY

Specifier = Callable[[str], bytes | None]
OnReport = Callable[[str, HealthReport], None]


class HdsServer:
    """``StreamHealthCheck`` as a generic (bytes in, bytes out) grpc.aio handler."""

    def __init__(self, specifier: Specifier, on_report: OnReport, refresh: float = 10.0) -> None:
        self.specifier = specifier
        self.on_report = on_report
        self.refresh = refresh
        self.streams = 0  # open streams
        self.reports = 0  # EndpointHealthResponses received

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE, {"StreamHealthCheck": grpc.stream_stream_rpc_method_handler(self.stream)}
        )

    async def stream(self, requests: AsyncIterator[bytes], context: Any) -> None:
        """One sidecar's stream: answer its request, re-send a changed specifier, pass on its reports."""
        out = _Sender(context)
        node = ""
        refresher: asyncio.Task[None] | None = None
        self.streams += 1
        try:
            async for message in requests:
                try:
                    request, response = split(message)
                    if request is not None:
                        node = node_id_of(request) or node
                        spec = self.specifier(node)
                        if spec is None:
                            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown node {node!r}")
                            return
                        await out.send(spec)
                        if refresher is None:
                            refresher = asyncio.create_task(self._refresh(node, out))
                    if response is not None:
                        if not node:
                            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "health report before request")
                            return
                        self.reports += 1
                        self.on_report(node, parse_report(response))
                except WireError as exc:
                    log.warning("%s: malformed HDS message: %s", node or context.peer(), exc)
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed message: {exc}")
                    return
        finally:
            self.streams -= 1
            if refresher is not None:
                refresher.cancel()

    async def _refresh(self, node: str, out: _Sender) -> None:
        """Kuma's watchdog: rebuild the specifier every ``refresh`` seconds, send it when it changed."""
        while True:
            await asyncio.sleep(self.refresh)
            spec = self.specifier(node)
            if spec is not None:
                await out.send(spec)


class _Sender:
    """The stream's one writer: sends a specifier only when it differs from the last one sent."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self._lock = asyncio.Lock()
        self._sent: bytes | None = None

    async def send(self, spec: bytes) -> None:
        async with self._lock:
            if spec != self._sent:
                await self._context.write(spec)
                self._sent = spec


def split(message: bytes) -> tuple[bytes | None, bytes | None]:
    """A ``HealthCheckRequestOrEndpointHealthResponse``: (request 1, response 2), one of them set."""
    request = response = None
    for number, value in fields(message):
        if number == 1 and isinstance(value, bytes):
            request = value
        elif number == 2 and isinstance(value, bytes):
            response = value
    return request, response


def node_id_of(request: bytes) -> str:
    """``HealthCheckRequest.node.id`` (node is field 1); empty when Envoy sent the node only once before."""
    for number, value in fields(request):
        if number == 1 and isinstance(value, bytes):
            return node_id(value)
    return ""


def parse_report(response: bytes) -> HealthReport:
    """Kuma's ``OnEndpointHealthResponse``: per cluster, the first endpoint's status; the admin cluster is
    Envoy's own readiness, ``localhost:<port>`` the app on a workload port. Other clusters are ignored."""
    ports: dict[int, bool] = {}
    envoy_ready = True  # no Envoy check: assume ready
    for number, cluster in fields(response):
        if number != 2 or not isinstance(cluster, bytes):  # cluster_endpoints_health
            continue
        name, status = _cluster_status(cluster)
        if status is None:
            continue
        healthy = status in HEALTHY_STATUSES
        if name in ENVOY_ADMIN_CLUSTERS:
            envoy_ready = healthy
        elif name.startswith(LOCAL_CLUSTER_PREFIX) and name[len(LOCAL_CLUSTER_PREFIX) :].isdigit():
            ports[int(name[len(LOCAL_CLUSTER_PREFIX) :])] = healthy
    return HealthReport(ports=ports, envoy_ready=envoy_ready)


def _cluster_status(cluster: bytes) -> tuple[str, int | None]:
    """(cluster_name 1, health_status of the first endpoint of the first locality 2), None without one."""
    name, first = "", None
    for number, value in fields(cluster):
        if number == 1 and isinstance(value, bytes):
            name = value.decode()
        elif number == 2 and isinstance(value, bytes) and first is None:
            first = value  # locality_endpoints_health: only the first one counts
    return name, None if first is None else _first_endpoint_status(first)


def _first_endpoint_status(locality: bytes) -> int | None:
    for number, value in fields(locality):
        if number == 2 and isinstance(value, bytes):  # endpoints_health
            for num, status in fields(value):
                if num == 2 and isinstance(status, int):  # health_status
                    return status
            return 0  # an endpoint without a status field: UNKNOWN (the enum's zero value)
    return None
