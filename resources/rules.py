"""Per-resource validation rules: what Kuma 2.14's validators reject, plus the documented stricter checks.

Each rule cites the Kuma function it follows. Rules look at one resource only and return every
finding at once (never the first one), so the loader can also run them on a resource whose schema
was broken and repaired (see ``loader.build``). Cross-resource rules live in ``validate.py``.

Kuma sources (tag v2.14.3): ``pkg/core/resources/apis/mesh/dataplane_validator.go`` and
``validators.go`` (Dataplane), ``meshservice/api/v1alpha1/validator.go`` (MeshService: name length and
"at most one selector" only), ``meshmultizoneservice/api/v1alpha1/validator.go``,
``hostnamegenerator/api/v1alpha1/validate.go``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from meshxds.resources import model as m
from meshxds.resources.hostnames import template_problem
from meshxds.resources.mtls import check_mtls
from meshxds.resources.mtp import check_mtp
from meshxds.resources.names import check_name
from meshxds.resources.policies import POLICY_KINDS, AnyPolicy
from meshxds.resources.targeting import check_policy


@dataclass(frozen=True)
class Finding:
    """One problem of one resource: a field path (Kuma's camelCase) and why; warnings do not fail a load."""

    field: str
    message: str
    warning: bool = False


SELECTORS = "dataplaneTags, dataplaneRef, or dataplaneLabels"
BACKEND_KINDS = ("MeshService", "MeshExternalService", "MeshMultiZoneService")
PORT_RANGE = "must be between 1 and 65535"
APP_PROTOCOL = "must be one of " + ", ".join(m.APP_PROTOCOLS)
# core_meta.ParseProtocol: the values a kuma.io/protocol tag or inbound.protocol may take.
PARSEABLE_PROTOCOLS = ("http", "http2", "tcp", "tls", "grpc", "kafka", "mysql")
# validators.go: tagNameCharacterSet / tagValueCharacterSet.
TAG_NAME = re.compile(r"[a-zA-Z0-9.\-_:/]*")
TAG_VALUE = re.compile(r"[a-zA-Z0-9.\-_:]*")
# meta_validator.go identifierRegexp (RFC 1123 subdomain), used for reachableBackends names.
IDENTIFIER = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# govalidator.IsDNSName, which Kuma's validateAddress accepts besides an IP.
DNS_NAME = re.compile(r"([a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})*[._]?")


def port_range(port: int | None, where: str, required: bool = True) -> list[Finding]:
    """``ValidatePort``: 1..65535 (Kuma's proto 0 means "missing", which is out of range too)."""
    if port is None:
        return [Finding(where, PORT_RANGE)] if required else []
    return [] if 1 <= port <= 65535 else [Finding(where, PORT_RANGE)]


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- Dataplane


def check_tags(tags: dict[str, str], where: str, require_service: bool = False) -> list[Finding]:
    """``ValidateTags``: non-empty names and values from Kuma's character sets (sorted by key, as Kuma)."""
    out: list[Finding] = []
    for key in sorted(tags):
        value = tags[key]
        if not key:
            out.append(Finding(where, "tag name must be non-empty"))
        elif not TAG_NAME.fullmatch(key):
            message = "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores"
            out.append(Finding(f"{where}.{key}", message))
        if not value:
            out.append(Finding(f"{where}.{key}", "tag value must be non-empty"))
        elif not TAG_VALUE.fullmatch(value):
            out.append(
                Finding(
                    f"{where}.{key}", "tag value must consist of alphanumeric characters, dots, dashes and underscores"
                )
            )
    if require_service and m.SERVICE_TAG not in tags:
        out.append(Finding(where, f'mandatory tag "{m.SERVICE_TAG}" is missing'))
    return out


def check_protocol(value: str | None, where: str) -> list[Finding]:
    if value is None or value.lower() in PARSEABLE_PROTOCOLS:
        return []
    allowed = ", ".join(sorted(m.APP_PROTOCOLS))
    return [Finding(where, f"has an invalid value {value!r}; allowed values: {allowed}")]


def check_address(address: str, where: str) -> list[Finding]:
    """``validateAddress``: required, not unspecified, an IP or a DNS name."""
    if not address:
        return [Finding(where, "must not be empty")]
    out: list[Finding] = []
    if address in ("0.0.0.0", "::"):
        out.append(Finding(where, "must not be 0.0.0.0 or ::"))
    if not is_ip(address) and not (len(address) <= 255 and DNS_NAME.fullmatch(address)):
        out.append(Finding(where, "must be a valid IP address or domain name"))
    return out


def check_inbound(inbound: m.Inbound, dp_address: str, where: str) -> list[Finding]:
    """``validateInbound`` plus validateNetworking's service-tag rule (only for inbounds that have tags)."""
    out = port_range(inbound.port, f"{where}.port")
    if inbound.service_port is not None:
        out += port_range(inbound.service_port, f"{where}.servicePort")
    same_port = inbound.service_port is None or inbound.service_port == inbound.port
    clash = "serviceAddress and servicePort must differ from address and port"
    if inbound.service_address is not None:
        if not is_ip(inbound.service_address):
            out.append(Finding(f"{where}.serviceAddress", "must be a valid IP address"))
        if inbound.service_address == dp_address and same_port:
            out.append(Finding(f"{where}.serviceAddress", clash))
    if inbound.address is not None:
        if not is_ip(inbound.address):
            out.append(Finding(f"{where}.address", "must be a valid IP address"))
        if inbound.address == inbound.service_address and same_port:
            out.append(Finding(f"{where}.serviceAddress", clash))
    out += check_tags(inbound.tags, f"{where}.tags")
    out += check_protocol(inbound.tags.get(m.PROTOCOL_TAG), f"{where}.tags.{m.PROTOCOL_TAG}")
    if inbound.protocol:
        out += check_protocol(inbound.protocol, f"{where}.protocol")
    if inbound.tags and m.SERVICE_TAG not in inbound.tags:
        out.append(Finding(f"{where}.tags.{m.SERVICE_TAG}", "tag has to exist when the inbound has tags"))
    return out


def check_outbound(outbound: m.Outbound, where: str) -> list[Finding]:
    """``validateOutbound``: port, address, then either a backendRef or tags with kuma.io/service."""
    out = port_range(outbound.port, f"{where}.port")
    if outbound.address and not is_ip(outbound.address):
        out.append(Finding(f"{where}.address", "must be a valid IP address"))
    ref = outbound.backend_ref
    if ref is not None:
        if ref.kind not in BACKEND_KINDS:
            out.append(Finding(f"{where}.backendRef.kind", "must be one of " + ", ".join(BACKEND_KINDS)))
        if not ref.name and not ref.labels:
            out.append(Finding(f"{where}.backendRef", "must have a name or labels"))
        if ref.kind != "MeshExternalService":
            out += port_range(ref.port, f"{where}.backendRef.port")
        if ref.namespace is not None:  # Kuma's Dataplane.Networking.Outbound.BackendRef has no such field
            out.append(Finding(f"{where}.backendRef.namespace", "unknown field"))
        if outbound.tags:
            out.append(Finding(f"{where}.backendRef", "backendRef and tags cannot both be defined"))
    elif not outbound.tags:
        out.append(Finding(f"{where}.tags", f'mandatory tag "{m.SERVICE_TAG}" is missing'))
    else:
        out += check_tags(outbound.tags, f"{where}.tags", require_service=True)
    return out


def check_reachable_ref(ref: m.BackendRef, where: str) -> list[Finding]:
    """``validateTransparentProxying``: kind, an RFC 1123 name, and name/namespace/labels combinations."""
    out: list[Finding] = []
    if ref.kind not in BACKEND_KINDS:
        out.append(Finding(f"{where}.kind", "must be one of " + ", ".join(BACKEND_KINDS)))
    if ref.name:
        if len(ref.name) > 253 or not IDENTIFIER.fullmatch(ref.name):
            out.append(Finding(f"{where}.name", "must be a lower-case RFC 1123 subdomain"))
    elif ref.namespace:
        out.append(Finding(f"{where}.name", "is required when namespace is defined"))
    elif not ref.labels:
        out.append(Finding(f"{where}.name", "name or labels are required"))
    if (ref.name or ref.namespace) and ref.labels:
        out.append(Finding(f"{where}.labels", "cannot be defined when name is specified"))
    if ref.port is not None:
        out += port_range(ref.port, f"{where}.port")
    return out


def check_dataplane(dp: m.Dataplane) -> list[Finding]:
    """Kuma accepts a Dataplane without inbounds, and inbounds without tags; it never checks duplicate ports.

    meshxds only adds: two inbounds on the same address and port are an error (Kuma would emit two
    listeners with one name and silently keep the last).
    """
    net = dp.networking
    out = check_address(net.address, "spec.networking.address")
    seen: dict[tuple[str, int], int] = {}
    for i, inbound in enumerate(net.inbound):
        where = f"spec.networking.inbound[{i}]"
        out += check_inbound(inbound, net.address, where)
        key = (inbound.address or net.address, inbound.port)
        if key in seen:
            out.append(Finding(f"{where}.port", f"duplicate inbound {key[0]}:{key[1]} (also inbound[{seen[key]}])"))
        seen.setdefault(key, i)
    for i, outbound in enumerate(net.outbound):
        out += check_outbound(outbound, f"spec.networking.outbound[{i}]")
    if net.listeners:
        message = "zone proxy listeners are accepted as in Kuma but meshxds serves them no configuration"
        out.append(Finding("spec.networking.listeners", message, warning=True))
    tp = net.transparent_proxying
    if tp is not None and tp.reachable_backends is not None:
        for i, rb in enumerate(tp.reachable_backends.refs):
            out += check_reachable_ref(rb, f"spec.networking.transparentProxying.reachableBackends.refs[{i}]")
    return out


# --------------------------------------------------------------------------- MeshService & co


def check_mesh_service(ms: m.MeshService) -> list[Finding]:
    """Kuma 2.14 checks the name length and "at most one selector"; the rest is meshxds' documented stricter set.

    No selector is valid in Kuma (it selects nothing): a warning. An appProtocol outside Kuma's list is
    accepted by Kuma and gets no cluster (``makeSplits``): a warning too.
    """
    out: list[Finding] = []
    if msg := check_name(ms.display_name):
        out.append(Finding("name", msg))
    sel = ms.spec.selector
    count = sum(x is not None for x in (sel.dataplane_tags, sel.dataplane_ref, sel.dataplane_labels))
    if count > 1:
        out.append(Finding("spec.selector", f"must specify only one of: {SELECTORS}"))
    elif count == 0 and ms.is_local:
        out.append(Finding("spec.selector", f"selects no Dataplane: none of {SELECTORS} is set", warning=True))
    if sel.dataplane_tags and "*" in sel.dataplane_tags.values():
        stars = ", ".join(sorted(k for k, v in sel.dataplane_tags.items() if v == "*"))
        message = (
            f'"*" ({stars}) matches any value here; Kuma 2.14 matches no Dataplane with it '
            '(its tag index has no "*" entry)'
        )
        out.append(Finding("spec.selector.dataplaneTags", message, warning=True))
    out += check_ports(ms.spec.ports, "spec.ports", unknown_protocol_is_error=False)
    for i, p in enumerate(ms.spec.ports):
        where = f"spec.ports[{i}].targetPort"
        if isinstance(p.target_port, int) and not 1 <= p.target_port <= 65535:
            out.append(Finding(where, PORT_RANGE))
        elif isinstance(p.target_port, str) and not p.target_port:
            out.append(Finding(where, "must be a port number or a non-empty port name"))
    return out


def check_ports(
    ports: Sequence[m.Port | m.MultiZonePort], where: str, unknown_protocol_is_error: bool = True
) -> list[Finding]:
    out: list[Finding] = []
    names: dict[str, int] = {}
    numbers: dict[int, int] = {}
    for i, p in enumerate(ports):
        out += port_range(p.port, f"{where}[{i}].port")
        if p.name is not None:
            if p.name in names:
                out.append(
                    Finding(f"{where}[{i}].name", f"duplicate port name {p.name!r} (also {where}[{names[p.name]}])")
                )
            names.setdefault(p.name, i)
        if p.port in numbers:
            out.append(Finding(f"{where}[{i}].port", f"duplicate port {p.port} (also {where}[{numbers[p.port]}])"))
        numbers.setdefault(p.port, i)
        if p.app_protocol not in m.APP_PROTOCOLS:
            if unknown_protocol_is_error:
                out.append(Finding(f"{where}[{i}].appProtocol", f"{APP_PROTOCOL} (is {p.app_protocol!r})"))
            else:
                message = f"{p.app_protocol!r} is not one of {', '.join(m.APP_PROTOCOLS)}: no cluster for this port"
                out.append(Finding(f"{where}[{i}].appProtocol", message, warning=True))
    return out


def check_multizone(mzs: m.MeshMultiZoneService) -> list[Finding]:
    """``MeshMultiZoneServiceResource.validate``: labels, ports, names and appProtocol (an error here, as in Kuma)."""
    out: list[Finding] = []
    if not mzs.spec.selector.mesh_service.match_labels:
        out.append(Finding("spec.selector.meshService.matchLabels", "must not be empty"))
    if not mzs.spec.ports:
        out.append(Finding("spec.ports", "must not be empty"))
    for i, p in enumerate(mzs.spec.ports):
        if p.name is not None and not p.name:
            out.append(Finding(f"spec.ports[{i}].name", "must not be empty"))
    return out + check_ports(mzs.spec.ports, "spec.ports")


def check_hostname_generator(gen: m.HostnameGenerator) -> list[Finding]:
    out: list[Finding] = []
    sel = gen.spec.selector
    count = sum(x is not None for x in (sel.mesh_service, sel.mesh_external_service, sel.mesh_multi_zone_service))
    if count != 1:
        out.append(
            Finding(
                "spec.selector", "must specify exactly one of: meshService, meshExternalService, meshMultiZoneService"
            )
        )
    if msg := template_problem(gen.spec.template):
        out.append(Finding("spec.template", msg))
    return out


def check_zone_ingress(zi: m.ZoneIngress) -> list[Finding]:
    net = zi.spec.networking
    out = port_range(net.port, "spec.networking.port")
    if net.advertised_port is not None:
        out += port_range(net.advertised_port, "spec.networking.advertisedPort")
    return out


def check_resource(res: m.Resource | AnyPolicy) -> list[Finding]:
    """Every finding of one resource, errors and warnings, in field order."""
    out = [] if res.name else [Finding("name", "must not be empty")]
    if res.kind in POLICY_KINDS:
        out += [Finding(field, message) for field, message in check_policy(res)]  # type: ignore[arg-type]
    elif isinstance(res, m.MeshService):
        out += [f for f in check_mesh_service(res) if res.name or f.field != "name"]
    elif isinstance(res, m.Dataplane):
        out += check_dataplane(res)
    elif isinstance(res, m.MeshMultiZoneService):
        out += check_multizone(res)
    elif isinstance(res, m.HostnameGenerator):
        out += check_hostname_generator(res)
    elif isinstance(res, m.ZoneIngress):
        out += check_zone_ingress(res)
    elif isinstance(res, m.MeshTrafficPermission):
        out += [Finding(field, message) for field, message in check_mtp(res)]
    elif isinstance(res, m.Mesh) and res.spec.mtls is not None:
        out += [Finding(field, message) for field, message in check_mtls(res.spec.mtls, res.name)]
    return out
