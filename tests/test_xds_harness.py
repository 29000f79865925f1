"""The shared test harness itself: a real Envoy from the wheel routes to a loopback echo server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshxds.xds.bootstrap import bootstrap_config
from tests.support.envoy import Envoy
from tests.support.net import echo_server, free_port, http_get
from tests.support.poll import wait_until


def static_bootstrap(listen_port: int, upstream_port: int) -> dict[str, Any]:
    hcm = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    router = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
    addr = {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}}
    return {
        "node": {"id": "default.static", "cluster": "default"},
        "static_resources": {
            "listeners": [
                {
                    "name": "in",
                    "address": addr,
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "hcm",
                                    "typed_config": {
                                        "@type": hcm,
                                        "stat_prefix": "in",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {"name": "all", "domains": ["*"],
                                                 "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "up"}}]}
                                            ]
                                        },
                                        "http_filters": [{"name": "router", "typed_config": {"@type": router}}],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "up",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": "up",
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                            "address": "127.0.0.1", "port_value": upstream_port}}}}]}],
                    },
                }
            ],
        },
    }  # fmt: skip


def test_envoy_routes_to_echo_and_admin_helpers_work(tmp_path: Path) -> None:
    listen = free_port()
    with echo_server(body="hello from up") as up, Envoy(static_bootstrap(listen, up.port), tmp_path) as envoy:
        envoy.wait_ready()
        status, body = wait_until(lambda: http_get("127.0.0.1", listen), what="request through envoy")
        assert (status, body) == (200, "hello from up")
        assert up.hits == ["/"]
        assert envoy.hosts("up") == [f"127.0.0.1:{up.port}"]
        assert envoy.stat("cluster.up.upstream_rq_200") == 1
        assert "ClustersConfigDump" in str(envoy.config_dump())
    assert not envoy.running


def test_bootstrap_without_server_still_starts_admin(tmp_path: Path) -> None:
    """Envoy pointed at a dead ADS port starts its admin and waits (initializing), which tests rely on."""
    with Envoy(bootstrap_config("default.web-1", ads_port=free_port()), tmp_path) as envoy:
        assert envoy.get("/ready").strip() in ("PRE_INITIALIZING", "INITIALIZING")
        assert envoy.dynamic_clusters() == {}
        assert envoy.stat("control_plane.connected_state") == 0
