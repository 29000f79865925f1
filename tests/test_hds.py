"""Service probes over Envoy's Health Discovery Service, as Kuma does them on universal.

- The specifier: pkg/hds/tracker/healthcheck_generator.go, cases ported from its test table
  (healthcheck_generator_test.go, testdata/hds.{1,2,3}.golden.yaml) as our own expectations.
- The state: dataplane_manager.go ``setHealth`` (a probed inbound starts NotReady) and
  pkg/hds/tracker/callbacks.go ``OnEndpointHealthResponse``/``updateDataplane``.
- The stream: pkg/hds/server/server.go, over a real grpc.aio server and client.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from meshxds.codec.encode import encode_message
from meshxds.resources import load_catalog
from meshxds.resources.health import HealthReport, apply_health
from meshxds.resources.model import Dataplane, InboundState
from meshxds.translators.health import HdsSettings, health_check_specifier
from meshxds.xds.hds import SERVICE, HdsServer, parse_report

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from envoy_data_plane.envoy.config.core.v3 import HealthStatus, Node
    from envoy_data_plane.envoy.service.health.v3 import (
        ClusterEndpointsHealth,
        EndpointHealth,
        EndpointHealthResponse,
        HealthCheckRequest,
        HealthCheckRequestOrEndpointHealthResponse,
        HealthCheckSpecifier,
        LocalityEndpointsHealth,
    )

# The HdsConfig of Kuma's generator test table.
KUMA_SETTINGS = HdsSettings(
    interval=timedelta(seconds=8),
    timeout=timedelta(seconds=3),
    check_interval=timedelta(seconds=1),
    no_traffic_interval=timedelta(seconds=2),
    healthy_threshold=4,
    unhealthy_threshold=5,
)
CHECK = {"healthyThreshold": 4, "interval": "1s", "noTrafficInterval": "2s", "timeout": "3s", "unhealthyThreshold": 5}


def dataplane(networking: dict[str, Any], name: str = "dp-1") -> Dataplane:
    return Dataplane.model_validate({"name": name, "mesh": "mesh-1", "spec": {"networking": networking}})


def kuma_dataplane(service_address: str, transparent: bool) -> Dataplane:
    """healthcheck_generator_test.go's Dataplane (admin port 9901 is the test's default admin port)."""
    networking: dict[str, Any] = {
        "address": "10.20.0.1",
        "admin": {"port": 9901},
        "inbound": [
            {
                "port": 9000,
                "serviceAddress": service_address,
                "servicePort": 80,
                "serviceProbe": {"tcp": {}},
                "tags": {"kuma.io/service": "backend"},
            }
        ],
    }
    if transparent:
        networking["transparentProxying"] = {"redirectPortInbound": 15006, "redirectPortOutbound": 15001}
    return dataplane(networking)


def kuma_golden(app_address: str, bind: str | None) -> dict[str, Any]:
    """hds.N.golden.yaml in protobuf JSON."""

    def endpoint(address: str, port: int) -> list[dict[str, Any]]:
        return [{"endpoints": [{"address": {"socketAddress": {"address": address, "portValue": port}}}]}]

    app: dict[str, Any] = {
        "clusterName": "localhost:80",
        "healthChecks": [{**CHECK, "tcpHealthCheck": {}}],
        "localityEndpoints": endpoint(app_address, 80),
    }
    if bind:
        app["upstreamBindConfig"] = {"sourceAddress": {"address": bind, "portValue": 0}}
    envoy = {
        "clusterName": "kuma:envoy:admin",
        "healthChecks": [{**CHECK, "httpHealthCheck": {"path": "/ready"}}],
        "localityEndpoints": endpoint("127.0.0.1", 9901),
    }
    return {"clusterHealthChecks": [envoy, app], "interval": "8s"}


def canonical(message: Any) -> dict[str, Any]:
    """Protobuf JSON with keys sorted, so dicts compare regardless of field order."""
    return json.loads(json.dumps(json.loads(message.to_json()), sort_keys=True))


@pytest.mark.parametrize(
    ("service_address", "transparent", "bind"),
    [
        ("192.168.0.1", False, None),  # hds.1: no transparent proxy, no bind
        ("192.168.0.1", True, "127.0.0.6"),  # hds.2: transparent proxy + non-loopback app: bind 127.0.0.6
        ("127.0.0.1", True, None),  # hds.3: loopback app: no bind
    ],
)
def test_specifier_as_kuma(service_address: str, transparent: bool, bind: str | None) -> None:
    spec = health_check_specifier(kuma_dataplane(service_address, transparent), KUMA_SETTINGS)
    assert canonical(spec) == json.loads(json.dumps(kuma_golden(service_address, bind), sort_keys=True))
    assert HealthCheckSpecifier.parse(encode_message(spec)) == spec  # the fast encoder's bytes are the message


def test_specifier_probe_values_and_defaults() -> None:
    """Probe fields override the defaults (Kuma's DefaultHdsConfig: 2s/1s/1s, thresholds 1, interval 5s)."""
    dp = dataplane(
        {
            "address": "10.0.0.1",
            "inbound": [
                {
                    "port": 80,
                    "tags": {"kuma.io/service": "a"},
                    "serviceProbe": {"interval": "0.5s", "healthyThreshold": 2},
                },
                {"port": 81, "tags": {"kuma.io/service": "b"}},  # no probe: no check
            ],
        }
    )
    spec = canonical(health_check_specifier(dp))
    assert spec["interval"] == "5s"
    assert [c["clusterName"] for c in spec["clusterHealthChecks"]] == ["localhost:80"]  # no admin port: no Envoy check
    check = spec["clusterHealthChecks"][0]["healthChecks"][0]
    assert check == {
        "healthyThreshold": 2,
        "interval": "0.500s",
        "noTrafficInterval": "1s",
        "tcpHealthCheck": {},
        "timeout": "2s",
        "unhealthyThreshold": 1,
    }


PROBED = {
    "address": "10.0.0.1",
    "inbound": [
        {"port": 80, "servicePort": 8080, "tags": {"kuma.io/service": "web"}, "serviceProbe": {"tcp": {}}},
        {"port": 81, "tags": {"kuma.io/service": "plain"}},
        {"port": 82, "tags": {"kuma.io/service": "off"}, "state": "NotReady"},
    ],
}


def states(dp: Dataplane) -> list[tuple[str, bool | None]]:
    return [(str(i.state), i.health.ready if i.health else None) for i in dp.networking.inbound]


def test_probed_inbound_starts_not_ready() -> None:
    """setHealth: every probed inbound is NotReady (health.ready false) until its sidecar reports."""
    assert states(apply_health(dataplane(PROBED), None)) == [
        ("NotReady", False),
        ("Ready", None),
        ("NotReady", None),
    ]


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (HealthReport({8080: True}), [("Ready", True), ("Ready", None), ("NotReady", None)]),
        (HealthReport({8080: False}), [("NotReady", False), ("Ready", None), ("NotReady", None)]),
        (HealthReport({}), [("Ready", True), ("Ready", None), ("NotReady", None)]),  # not reported: Envoy's health
        (HealthReport({8080: True}, envoy_ready=False), [("NotReady", False), ("NotReady", False), ("NotReady", None)]),
    ],
)
def test_report_sets_state_as_kuma(report: HealthReport, expected: list[tuple[str, bool | None]]) -> None:
    """updateDataplane: by workload port (servicePort), and'ed with Envoy's readiness; a file's NotReady stays."""
    assert states(apply_health(dataplane(PROBED), report)) == expected


def test_unchanged_dataplane_is_the_same_object() -> None:
    dp = dataplane({"address": "10.0.0.1", "inbound": [{"port": 81, "tags": {"kuma.io/service": "p"}}]})
    assert apply_health(dp, HealthReport({81: True})) is dp
    assert apply_health(dp, None) is dp


def endpoint_health_response(statuses: dict[str, HealthStatus | None]) -> EndpointHealthResponse:
    """Envoy's report: one cluster per name, one endpoint each (None: a cluster with no endpoints)."""
    clusters = []
    for name, status in statuses.items():
        locality = (
            LocalityEndpointsHealth(endpoints_health=[EndpointHealth(health_status=status)])
            if status is not None
            else LocalityEndpointsHealth()
        )
        clusters.append(ClusterEndpointsHealth(cluster_name=name, locality_endpoints_health=[locality]))
    return EndpointHealthResponse(cluster_endpoints_health=clusters)


def test_parse_report_as_kuma() -> None:
    """OnEndpointHealthResponse: HEALTHY and UNKNOWN count as healthy; the admin cluster is Envoy's readiness;
    clusters without endpoints are skipped."""
    response = endpoint_health_response(
        {
            "kuma:envoy:admin": HealthStatus.HEALTHY,
            "localhost:8080": HealthStatus.UNHEALTHY,
            "localhost:8081": HealthStatus.UNKNOWN,
            "localhost:8082": HealthStatus.TIMEOUT,
            "localhost:8083": None,
        }
    )
    report = parse_report(encode_message(response))
    assert report == HealthReport({8080: False, 8081: True, 8082: False}, envoy_ready=True)
    draining = parse_report(encode_message(endpoint_health_response({"kuma:envoy:admin": HealthStatus.DRAINING})))
    assert draining.envoy_ready is False


def wrap(request: HealthCheckRequest | None = None, response: EndpointHealthResponse | None = None) -> bytes:
    message = HealthCheckRequestOrEndpointHealthResponse(
        health_check_request=request, endpoint_health_response=response
    )
    return encode_message(message)


def test_hds_stream_over_real_grpc() -> None:
    """server.go ``process``: a request gets the node's specifier, a report reaches the tracker, a changed
    specifier is pushed again, and an unknown node is refused."""

    async def scenario() -> None:
        specs = {"mesh-1.dp-1": encode_message(health_check_specifier(kuma_dataplane("127.0.0.1", False)))}
        reports: list[tuple[str, HealthReport]] = []
        got_report = asyncio.Event()

        def on_report(node: str, report: HealthReport) -> None:
            reports.append((node, report))
            got_report.set()

        hds = HdsServer(specs.get, on_report, refresh=0.05)
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((hds.handler(),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.stream_stream(f"/{SERVICE}/StreamHealthCheck")()
                request = HealthCheckRequest(node=Node(id="mesh-1.dp-1"))
                await call.write(
                    encode_message(HealthCheckRequestOrEndpointHealthResponse(health_check_request=request))
                )
                first = HealthCheckSpecifier.parse(await asyncio.wait_for(call.read(), 5))
                assert [c.cluster_name for c in first.cluster_health_checks] == ["kuma:envoy:admin", "localhost:80"]
                response = endpoint_health_response({"localhost:80": HealthStatus.UNHEALTHY})
                await call.write(wrap(response=response))
                await asyncio.wait_for(got_report.wait(), 5)
                assert reports == [("mesh-1.dp-1", HealthReport({80: False}))]
                # The Dataplane changes (its probe goes away): the refresh pushes the new specifier.
                specs["mesh-1.dp-1"] = encode_message(health_check_specifier(dataplane({"address": "10.0.0.1"})))
                second = HealthCheckSpecifier.parse(await asyncio.wait_for(call.read(), 5))
                assert second.cluster_health_checks == []
                await call.done_writing()

                unknown = channel.stream_stream(f"/{SERVICE}/StreamHealthCheck")()
                await unknown.write(wrap(request=HealthCheckRequest(node=Node(id="mesh-1.nobody"))))
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await asyncio.wait_for(unknown.read(), 5)
                assert err.value.code() == grpc.StatusCode.NOT_FOUND
        finally:
            await server.stop(0)

    asyncio.run(scenario())


def test_inbound_state_enum_round_trip() -> None:
    """The states apply_health writes are the model's own values (a reload reads them back unchanged)."""
    dp = apply_health(dataplane(PROBED), HealthReport({8080: True}))
    again = Dataplane.model_validate(dp.model_dump(by_alias=True))
    assert again.networking.inbound[0].state == InboundState.READY


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        ("{interval: 5m}", "serviceProbe.interval: must have a valid value"),
        ("{timeout: 0s}", "serviceProbe.timeout: must have a positive value"),
        ("{healthyThreshold: 0}", "serviceProbe.healthyThreshold: must have a positive value"),
        ("{unhealthyThreshold: -1}", "serviceProbe.unhealthyThreshold: must have a positive value"),
        ("{tcp: {}, http: {}}", "serviceProbe.http"),  # unknown field
    ],
)
def test_service_probe_validation_as_kuma(tmp_path: Path, probe: str, message: str) -> None:
    """dataplane_validator.go ``validateServiceProbe``: given durations and thresholds must be positive."""
    (tmp_path / "dp.yaml").write_text(
        "type: Dataplane\nname: dp-1\nmesh: default\nnetworking:\n  address: 10.0.0.1\n  inbound:\n"
        f"    - port: 80\n      tags: {{kuma.io/service: web}}\n      serviceProbe: {probe}\n"
    )
    result = load_catalog([tmp_path])
    assert result.catalog is None
    assert any(message in str(p) for p in result.errors), [str(p) for p in result.errors]
