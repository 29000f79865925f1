"""The DNS listener each transparent proxy gets: Kuma's ``DNSGenerator`` (pkg/xds/generator/dns_generator.go).

Kuma answers a mesh's names inside the sidecar: a UDP listener on ``127.0.0.1:<dns port>`` with Envoy's
``envoy.filters.udp.dns_filter`` and an inline table mapping every name to its VIP (and, unless the proxy
is IPv4-only, the IPv4-mapped IPv6 form of it). The names come from the mesh's ``VIPDomains``
(pkg/xds/context/mesh_context_builder.go): legacy ``<kuma.io/service>.mesh`` names (with ``_`` → ``.``
as a second name) unless the mesh is Exclusive, then every MeshService/MeshMultiZoneService
hostname from ``status.addresses`` on its first VIP. A proxy only gets the names whose VIP is the
address of one of its outbounds: what it cannot reach, it cannot resolve (Envoy answers NXDOMAIN).

The port is the one the proxy reports in its node metadata (``dataplane.dns.port``, kuma-dp's
``--dns-envoy-port``); without it, or without transparent proxying, there is no DNS listener.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from meshxds.resources.model import Dataplane, MeshMultiZoneService, MeshService, MeshServicesMode
from meshxds.translators import protos as pb

DNS_LISTENER_NAME = "kuma:dns"  # envoy_names.GetDNSListenerName
DNS_STAT_PREFIX = "kuma_dns"
DNS_FILTER = "envoy.filters.udp.dns_filter"
DNS_LISTENER_ADDRESS = "127.0.0.1"
ANSWER_TTL_S = 30
MESH_TLD = "mesh"  # KUMA_DNS_SERVER_DOMAIN
IPV4_ONLY = "IPv4"  # transparentProxying.ipFamilyMode


@dataclass(frozen=True, slots=True)
class VipDomains:
    """Kuma's ``xds_types.VIPDomains``: the names that resolve to one VIP."""

    address: str
    domains: tuple[str, ...]


def legacy_domains(service: str) -> tuple[str, ...]:
    """``VIPOutbounds`` for a ``kuma.io/service`` VIP: ``<service>.mesh``, plus the name with ``_`` as ``.``."""
    name = f"{service}.{MESH_TLD}"
    cleaned = f"{service.replace('_', '.')}.{MESH_TLD}"
    return (name,) if cleaned == name else (name, cleaned)


def mesh_vip_domains(
    mode: MeshServicesMode,
    legacy_vips: Mapping[str, str],
    services: Iterable[MeshService | MeshMultiZoneService],
) -> tuple[VipDomains, ...]:
    """A mesh's VIPDomains in Kuma's order: legacy VIPs (not in Exclusive), then each service's hostnames.

    A MeshService's names are its ``status.addresses`` on ``status.vips[0]`` (``MeshServiceResource.Domains``).
    """
    out: list[VipDomains] = []
    if mode != MeshServicesMode.EXCLUSIVE:
        out += [VipDomains(ip, legacy_domains(service)) for service, ip in legacy_vips.items()]
    for res in services:
        if res.status.vips:
            out.append(VipDomains(res.status.vips[0].ip, tuple(a.hostname for a in res.status.addresses)))
    return tuple(out)


def tp_enabled(dp: Dataplane) -> bool:
    """Kuma's ``DataplaneConfig.Enabled`` (one rule for every translator: ``Dataplane.transparent``)."""
    return dp.transparent


def ipv6_enabled(dp: Dataplane) -> bool:
    """Kuma's ``EnabledIPv6``: anything but IPv4-only (an IPv4 VIP always has an IPv6-mapped form)."""
    tp = dp.networking.transparent_proxying
    return tp is not None and tp.ip_family_mode != IPV4_ONLY


def to_v6(ip: str) -> str:
    """Kuma's ``util_net.ToV6``: ``::ffff:<hex>:<hex>`` for IPv4, anything else unchanged."""
    if not _is_ipv4(ip):
        return ip
    packed = ipaddress.IPv4Address(ip).packed
    return f"::ffff:{packed[0] << 8 | packed[1]:x}:{packed[2] << 8 | packed[3]:x}"


def dns_table(domains: Sequence[VipDomains], outbound_addresses: Iterable[str], ipv6: bool) -> dict[str, list[str]]:
    """Name → addresses for the VIPs this proxy has an outbound on; a later VIPDomains entry wins a name."""
    reachable = set(outbound_addresses)
    vips: dict[str, list[str]] = {}
    for entry in domains:
        if entry.address not in reachable:
            continue  # no outbound for the address: no point resolving it
        addresses = [entry.address]
        v6 = to_v6(entry.address)
        if ipv6 and v6 != entry.address:
            addresses.append(v6)
        for domain in entry.domains:
            vips[domain] = addresses
    return vips


def dns_listener(
    dp: Dataplane, dns_port: int, domains: Sequence[VipDomains], outbound_addresses: Iterable[str]
) -> pb.Listener | None:
    """The proxy's ``kuma:dns`` listener, or None when Kuma generates none (no transparent proxy, no port)."""
    if not dns_port or not tp_enabled(dp):
        return None
    table = dns_table(domains, outbound_addresses, ipv6_enabled(dp))
    return _listener(dns_port, tuple((name, tuple(table[name])) for name in sorted(table)))


@lru_cache(maxsize=4096)
def _listener(port: int, table: tuple[tuple[str, tuple[str, ...]], ...]) -> pb.Listener:
    """Shared by every proxy with the same port and table (messages are never mutated)."""
    ttl = pb.seconds(ANSWER_TTL_S)
    virtual_domains = [
        pb.DnsTableDnsVirtualDomain(
            name=name,
            endpoint=pb.DnsTableDnsEndpoint(address_list=pb.DnsTableAddressList(address=list(addresses))),
            answer_ttl=ttl,
        )
        for name, addresses in table
    ]
    config = pb.DnsFilterConfig(
        stat_prefix=DNS_STAT_PREFIX,
        server_config=pb.DnsFilterConfigServerContextConfig(
            inline_dns_table=pb.DnsTable(virtual_domains=virtual_domains)
        ),
    )
    return pb.Listener(
        name=DNS_LISTENER_NAME,
        address=pb.Address(
            socket_address=pb.SocketAddress(
                address=DNS_LISTENER_ADDRESS, port_value=port, protocol=pb.SocketAddressProtocol.UDP
            )
        ),
        enable_reuse_port=True,
        listener_filters=[pb.ListenerFilter(name=DNS_FILTER, typed_config=pb.pack(config))],
        traffic_direction=pb.TrafficDirection.INBOUND,
    )


def _is_ipv4(address: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(address), ipaddress.IPv4Address)
    except ValueError:
        return False
