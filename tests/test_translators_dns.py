"""The DNS listener, as Kuma's ``DNSGenerator`` builds it (pkg/xds/generator/dns_generator.go).

Cases 01-03 port Kuma's own table (dns_generator_test.go, testdata/dns/{1,2,3}-*.yaml): the same
VIPDomains, Dataplanes and expected listener, written here as our own expectations. The rest pin the
rules those cases rely on (VIPDomains from mesh_context_builder.go / topology/dns.go, ``util_net.ToV6``,
``DataplaneConfig.Enabled``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from meshxds.codec.encode import encode_message
from meshxds.resources import load_catalog
from meshxds.resources.model import Dataplane, MeshService, MeshServicesMode
from meshxds.snapshots.builder import Builder
from meshxds.translators.dns import (
    VipDomains,
    dns_listener,
    legacy_domains,
    mesh_vip_domains,
    to_v6,
    tp_enabled,
)

# dns_generator_test.go's mesh context: the third entry has no outbound, so it never shows.
KUMA_VIP_DOMAINS = (
    VipDomains("240.0.0.1", ("httpbin.mesh",)),
    VipDomains("240.0.0.0", ("backend.test-ns.svc.8080.mesh", "backend_test-ns_svc_8080.mesh")),
    VipDomains("2001:db8::ff00:42:8329", ("frontend.test-ns.svc.8080.mesh", "frontend_test-ns_svc_8080.mesh")),
)
KUMA_OUTBOUNDS = ("240.0.0.0", "240.0.0.1")  # testdata/dns/1-dataplane.input.yaml's outbound addresses
KUMA_DNS_PORT = 53001  # the test's DataplaneMetadata.DNSPort


def dataplane(networking: dict[str, Any]) -> Dataplane:
    return Dataplane.model_validate({"name": "side-car", "spec": {"networking": {"address": "", **networking}}})


TP = {"transparentProxying": {"redirectPortOutbound": 15001, "redirectPortInbound": 15003}}


def domain(name: str, *addresses: str) -> dict[str, Any]:
    return {"name": name, "endpoint": {"addressList": {"address": list(addresses)}}, "answerTtl": "30s"}


def expected(*domains: dict[str, Any]) -> dict[str, Any]:
    """testdata/dns/1-envoy-config.golden.yaml's listener, in protobuf JSON."""
    return {
        "name": "kuma:dns",
        "address": {"socketAddress": {"protocol": "UDP", "address": "127.0.0.1", "portValue": KUMA_DNS_PORT}},
        "listenerFilters": [
            {
                "name": "envoy.filters.udp.dns_filter",
                "typedConfig": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig",
                    "statPrefix": "kuma_dns",
                    "serverConfig": {"inlineDnsTable": {"virtualDomains": list(domains)}},
                },
            }
        ],
        "trafficDirection": "INBOUND",
        "enableReusePort": True,
    }


def as_json(listener: Any) -> dict[str, Any]:
    return json.loads(listener.to_json())


def virtual_domains(listener: Any) -> list[dict[str, Any]]:
    config = as_json(listener)["listenerFilters"][0]["typedConfig"]
    return config["serverConfig"]["inlineDnsTable"]["virtualDomains"]


def test_kuma_01_dns_enabled_dual_stack() -> None:
    """Kuma case 01: every reachable name, sorted, with its VIP and the IPv6-mapped VIP, TTL 30 s."""
    listener = dns_listener(dataplane(TP), KUMA_DNS_PORT, KUMA_VIP_DOMAINS, KUMA_OUTBOUNDS)
    assert listener is not None
    assert as_json(listener) == expected(
        domain("backend.test-ns.svc.8080.mesh", "240.0.0.0", "::ffff:f000:0"),
        domain("backend_test-ns_svc_8080.mesh", "240.0.0.0", "::ffff:f000:0"),
        domain("httpbin.mesh", "240.0.0.1", "::ffff:f000:1"),
    )
    encode_message(listener)  # the fast encoder handles every new message type


def test_kuma_02_no_transparent_proxy_no_listener() -> None:
    """Kuma case 02: an empty Dataplane (no transparent proxying) gets nothing."""
    assert dns_listener(dataplane({}), KUMA_DNS_PORT, KUMA_VIP_DOMAINS, KUMA_OUTBOUNDS) is None


def test_kuma_03_ipv4_only_has_no_mapped_addresses() -> None:
    """Kuma case 03: ``ipFamilyMode: IPv4`` with an IPv4 address: only the IPv4 VIPs."""
    tp = {"transparentProxying": {**TP["transparentProxying"], "ipFamilyMode": "IPv4"}}
    listener = dns_listener(dataplane({"address": "172.0.0.1", **tp}), KUMA_DNS_PORT, KUMA_VIP_DOMAINS, KUMA_OUTBOUNDS)
    assert listener is not None
    assert as_json(listener) == expected(
        domain("backend.test-ns.svc.8080.mesh", "240.0.0.0"),
        domain("backend_test-ns_svc_8080.mesh", "240.0.0.0"),
        domain("httpbin.mesh", "240.0.0.1"),
    )


def test_no_dns_port_no_listener() -> None:
    """``withDNSPort(0)`` disables the DNS redirect: a proxy that reports no port gets no listener."""
    assert dns_listener(dataplane(TP), 0, KUMA_VIP_DOMAINS, KUMA_OUTBOUNDS) is None


@pytest.mark.parametrize(
    ("networking", "enabled"),
    [
        ({"transparentProxying": {}}, False),  # a block without redirect ports is not a transparent proxy
        ({"transparentProxying": {"redirectPortInbound": 15006}}, True),
        ({"transparentProxying": {"redirectPortOutbound": 15001}}, True),
        ({"address": "fd00::1", "transparentProxying": {"redirectPortOutbound": 15001, "ipFamilyMode": "IPv4"}}, False),
        ({"address": "10.0.0.1", "transparentProxying": {"redirectPortOutbound": 15001, "ipFamilyMode": "IPv4"}}, True),
    ],
)
def test_transparent_proxy_enabled_as_kuma(networking: dict[str, Any], enabled: bool) -> None:
    """pkg/transparentproxy/config/dataplane/config_dataplane.go ``Enabled``."""
    dp = dataplane(networking)
    assert tp_enabled(dp) is enabled
    assert (dns_listener(dp, KUMA_DNS_PORT, KUMA_VIP_DOMAINS, KUMA_OUTBOUNDS) is not None) is enabled


def test_only_reachable_names_and_later_entries_win() -> None:
    """A VIP without an outbound is left out; a name in two VIPDomains keeps the later one (a Go map write)."""
    domains = (VipDomains("240.0.0.1", ("a.mesh", "shared")), VipDomains("241.0.0.1", ("b.example", "shared")))
    listener = dns_listener(dataplane(TP), KUMA_DNS_PORT, domains, ["241.0.0.1"])
    assert listener is not None
    assert [d["name"] for d in virtual_domains(listener)] == ["b.example", "shared"]
    both = dns_listener(dataplane(TP), KUMA_DNS_PORT, domains, ["240.0.0.1", "241.0.0.1"])
    assert both is not None
    assert {d["name"]: d["endpoint"]["addressList"]["address"][0] for d in virtual_domains(both)}[
        "shared"
    ] == "241.0.0.1"


def test_to_v6_as_kuma() -> None:
    """pkg/util/net/ips.go ``ToV6``: hex groups without leading zeros; IPv6 unchanged."""
    assert to_v6("240.0.0.0") == "::ffff:f000:0"
    assert to_v6("241.0.0.1") == "::ffff:f100:1"
    assert to_v6("10.1.2.3") == "::ffff:a01:203"
    assert to_v6("fd00::1") == "fd00::1"


def test_legacy_names_as_kuma() -> None:
    """topology/dns.go ``VIPOutbounds`` (vips.Service): ``<service>.mesh``, plus ``_`` → ``.`` when different."""
    assert legacy_domains("backend_test-ns_svc_8080") == (
        "backend_test-ns_svc_8080.mesh",
        "backend.test-ns.svc.8080.mesh",
    )
    assert legacy_domains("redis") == ("redis.mesh",)


def test_mesh_vip_domains_order_and_modes() -> None:
    """mesh_context_builder.go: legacy VIPs unless Exclusive, then MeshService ``status.addresses`` on ``vips[0]``."""
    ms = MeshService.model_validate(
        {
            "name": "redis",
            "spec": {"ports": [{"port": 6379}]},
            "status": {
                "vips": [{"ip": "241.0.0.1"}, {"ip": "241.0.0.9"}],
                "addresses": [{"hostname": "redis.svc.mesh.local"}, {"hostname": "redis.other"}],
            },
        }
    )
    no_vip = MeshService.model_validate({"name": "novip", "spec": {"ports": [{"port": 1}]}})
    legacy = {"redis": "240.0.0.1"}
    assert mesh_vip_domains(MeshServicesMode.EVERYWHERE, legacy, [ms, no_vip]) == (
        VipDomains("240.0.0.1", ("redis.mesh",)),
        VipDomains("241.0.0.1", ("redis.svc.mesh.local", "redis.other")),
    )
    assert mesh_vip_domains(MeshServicesMode.EXCLUSIVE, legacy, [ms]) == (
        VipDomains("241.0.0.1", ("redis.svc.mesh.local", "redis.other")),
    )


def test_builder_redoes_only_the_proxy_whose_dns_port_changed() -> None:
    """The reported port is a build input: the same ports reuse every snapshot, a new port changes one proxy."""
    case = Path(__file__).parent / "golden" / "dns" / "input"
    catalog = load_catalog([case], dns_ports={"default.web-1": 15054, "default.web-2": 15054}).catalog
    assert catalog is not None
    builder = Builder()
    first = builder.build(catalog)
    again = builder.build(replace(catalog, dns_ports=dict(catalog.dns_ports)))
    assert all(again[n] is first[n] for n in first)
    moved = builder.build(replace(catalog, dns_ports={"default.web-1": 15055, "default.web-2": 15054}))
    assert [n for n in first if moved[n] is not first[n]] == ["default.web-1"]
    listener = moved["default.web-1"].resources["type.googleapis.com/envoy.config.listener.v3.Listener"]["kuma:dns"]
    assert listener.message.address.socket_address.port_value == 15055
