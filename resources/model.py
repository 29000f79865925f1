"""Kuma resource types as pydantic models, with Kuma's own field names.

Port ranges are not schema rules here but ``rules.py`` rules, so an out-of-range port is
reported together with the resource's other problems instead of hiding them.
Every model forbids unknown fields so a typo in YAML is an error naming the field,
not a silently ignored setting. Models are frozen: later stages (generation,
status) derive new objects with ``model_copy(update=...)`` instead of mutating,
so a resource can be shared safely between meshes, snapshots and threads.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from meshxds.resources.base import Strict
from meshxds.resources.mtls import Mode, Mtls

# Well-known labels and tags (Kuma's names).
MESH_LABEL = "kuma.io/mesh"
ZONE_LABEL = "kuma.io/zone"
ORIGIN_LABEL = "kuma.io/origin"
DISPLAY_NAME_LABEL = "kuma.io/display-name"
NAMESPACE_LABEL = "k8s.kuma.io/namespace"
MANAGED_BY_LABEL = "kuma.io/managed-by"
ENV_LABEL = "kuma.io/env"
SERVICE_TAG = "kuma.io/service"
PROTOCOL_TAG = "kuma.io/protocol"
ZONE_TAG = "kuma.io/zone"
PROXY_TYPE_LABEL = "kuma.io/proxy-type"
MANAGED_BY_GENERATOR = "meshservice-generator"

APP_PROTOCOLS = ("tcp", "http", "http2", "grpc", "kafka")
DURATION = re.compile(r"-?\d+(\.\d+)?s")  # protobuf JSON's google.protobuf.Duration


class LabelNames:
    """The names Kuma reads from labels (display name, namespace, zone), for models with ``name`` and ``labels``."""

    if TYPE_CHECKING:  # declared by the models that mix this in (kept out of their field order)
        name: str
        labels: dict[str, str]

    @property
    def display_name(self) -> str:
        return self.labels.get(DISPLAY_NAME_LABEL, self.name)

    @property
    def namespace(self) -> str:
        return self.labels.get(NAMESPACE_LABEL, "")

    @property
    def zone(self) -> str:
        return self.labels.get(ZONE_LABEL, "")


# --------------------------------------------------------------------------- Mesh


class MeshServicesMode(StrEnum):
    DISABLED = "Disabled"
    EVERYWHERE = "Everywhere"
    REACHABLE_BACKENDS = "ReachableBackends"
    EXCLUSIVE = "Exclusive"


class MeshServices(Strict):
    mode: MeshServicesMode = MeshServicesMode.DISABLED


class MeshOutbound(Strict):
    passthrough: bool = True


class MeshNetworking(Strict):
    outbound: MeshOutbound | None = None


class MeshRouting(Strict):
    locality_aware_load_balancing: bool = Field(False, alias="localityAwareLoadBalancing")
    zone_egress: bool = Field(False, alias="zoneEgress")
    default_forbid_mesh_external_service_access: bool = Field(False, alias="defaultForbidMeshExternalServiceAccess")


class MeshSpec(Strict):
    mesh_services: MeshServices | None = Field(None, alias="meshServices")
    mtls: Mtls | None = None
    # Kept as given for later issues (metrics, ...): validated as mappings only.
    networking: MeshNetworking | None = None
    routing: MeshRouting | None = None
    metrics: dict[str, Any] | None = None
    tracing: dict[str, Any] | None = None
    logging: dict[str, Any] | None = None
    constraints: dict[str, Any] | None = None
    skip_creating_initial_policies: list[str] | None = Field(None, alias="skipCreatingInitialPolicies")

    @property
    def mode(self) -> MeshServicesMode:
        """Kuma's ``MeshServicesMode()``: a missing block means Disabled."""
        return self.mesh_services.mode if self.mesh_services else MeshServicesMode.DISABLED

    @property
    def locality_aware(self) -> bool:
        return bool(self.routing and self.routing.locality_aware_load_balancing)

    @property
    def mtls_enabled(self) -> bool:
        """Kuma's ``MTLSEnabled()``: an enabled backend is named."""
        return bool(self.mtls and self.mtls.enabled_backend)

    @property
    def mtls_mode(self) -> Mode:
        """The enabled backend's mode; STRICT when there is none (Kuma's ``GetMode()`` on nil)."""
        backend = self.mtls.enabled if self.mtls else None
        return backend.mode if backend else Mode.STRICT

    @property
    def passthrough(self) -> bool:
        """Kuma's ``IsPassthrough()``: unset means true."""
        outbound = self.networking.outbound if self.networking else None
        return outbound is None or outbound.passthrough


class Mesh(Strict):
    kind: Literal["Mesh"] = "Mesh"
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    spec: MeshSpec = Field(default_factory=MeshSpec)


# --------------------------------------------------------------------------- Dataplane


class InboundState(StrEnum):
    READY = "Ready"
    NOT_READY = "NotReady"
    IGNORED = "Ignored"


class Health(Strict):
    ready: bool = True


class ServiceProbe(Strict):
    """Kuma's ``Inbound.ServiceProbe``: what the sidecar checks over HDS (``validateServiceProbe``: durations
    and thresholds, when given, must be positive). Durations are protobuf-JSON strings, e.g. ``"1s"``, ``"0.5s"``."""

    interval: str | None = None
    timeout: str | None = None
    unhealthy_threshold: int | None = Field(None, alias="unhealthyThreshold")
    healthy_threshold: int | None = Field(None, alias="healthyThreshold")
    tcp: dict[str, Any] | None = None

    @field_validator("interval", "timeout")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            if not DURATION.fullmatch(value):
                raise PydanticCustomError("duration", "must have a valid value (a duration such as 1s or 0.5s)")
            if float(value[:-1]) <= 0:
                raise PydanticCustomError("duration", "must have a positive value")
        return value

    @field_validator("unhealthy_threshold", "healthy_threshold")
    @classmethod
    def _threshold(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise PydanticCustomError("threshold", "must have a positive value")
        return value

    @staticmethod
    def seconds(value: str | None) -> float | None:
        return float(value[:-1]) if value is not None else None


class Inbound(Strict):
    port: int
    service_port: int | None = Field(None, alias="servicePort")
    service_address: str | None = Field(None, alias="serviceAddress")
    address: str | None = None
    name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    state: InboundState = InboundState.READY
    health: Health | None = None
    protocol: str | None = None
    service_probe: ServiceProbe | None = Field(None, alias="serviceProbe")

    @property
    def healthy(self) -> bool:
        """Kuma's ``GetHealthyInbounds``: Ready and (no health or health.ready)."""
        return self.state == InboundState.READY and (self.health is None or self.health.ready)

    @property
    def service(self) -> str | None:
        return self.tags.get(SERVICE_TAG)

    @property
    def workload_port(self) -> int:
        """Kuma's ``ToInboundInterface().WorkloadPort``: where the app listens (``servicePort``, else ``port``)."""
        return self.service_port or self.port


class BackendRef(Strict):
    """A destination reference: an outbound's ``backendRef`` and each of ``reachableBackends.refs``."""

    kind: str = "MeshService"
    name: str | None = None
    namespace: str | None = None
    port: int | None = None
    labels: dict[str, str] | None = None


class Outbound(Strict):
    address: str | None = None
    port: int
    tags: dict[str, str] | None = None
    backend_ref: BackendRef | None = Field(None, alias="backendRef")


class ReachableBackends(Strict):
    refs: list[BackendRef] = Field(default_factory=list)


class TransparentProxying(Strict):
    redirect_port_inbound: int | None = Field(None, alias="redirectPortInbound")
    redirect_port_outbound: int | None = Field(None, alias="redirectPortOutbound")
    reachable_services: list[str] = Field(default_factory=list, alias="reachableServices")
    reachable_backends: ReachableBackends | None = Field(None, alias="reachableBackends")
    ip_family_mode: str | None = Field(None, alias="ipFamilyMode")
    direct_access_services: list[str] | None = Field(None, alias="directAccessServices")


class DataplaneNetworking(Strict):
    address: str
    advertised_address: str | None = Field(None, alias="advertisedAddress")
    inbound: list[Inbound] = Field(default_factory=list)
    outbound: list[Outbound] = Field(default_factory=list)
    transparent_proxying: TransparentProxying | None = Field(None, alias="transparentProxying")
    admin: dict[str, Any] | None = None
    gateway: dict[str, Any] | None = None
    # Zone proxy listeners (ZoneIngress/ZoneEgress on a Dataplane, Kuma 2.14): accepted, not served.
    listeners: list[dict[str, Any]] | None = None


class DataplaneSpec(Strict):
    networking: DataplaneNetworking
    metrics: dict[str, Any] | None = None
    probes: dict[str, Any] | None = None


class Dataplane(Strict):
    kind: Literal["Dataplane"] = "Dataplane"
    name: str
    mesh: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    spec: DataplaneSpec

    @property
    def networking(self) -> DataplaneNetworking:
        return self.spec.networking

    @property
    def node_id(self) -> str:
        """Kuma's node id convention: ``<mesh>.<name>``."""
        return f"{self.mesh}.{self.name}"

    @property
    def transparent(self) -> bool:
        """Kuma's ``GetTransparentProxy().Enabled()``: a redirect port is set, and an ``IPv4`` family mode has an
        IPv4 address. A ``transparentProxying`` block without redirect ports is not a transparent proxy
        (``pkg/transparentproxy/config/dataplane/config_dataplane.go``)."""
        tp = self.spec.networking.transparent_proxying
        if tp is None or not ((tp.redirect_port_inbound or 0) > 0 or (tp.redirect_port_outbound or 0) > 0):
            return False
        if (tp.ip_family_mode or "").lower() != "ipv4":
            return True
        try:
            return ipaddress.ip_address(self.spec.networking.address).version == 4
        except ValueError:
            return False


# --------------------------------------------------------------------------- MeshService


class MeshServiceState(StrEnum):
    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"


class DataplaneRef(Strict):
    name: str


class LabelSelector(Strict):
    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")


class Selector(Strict):
    dataplane_tags: dict[str, str] | None = Field(None, alias="dataplaneTags")
    dataplane_ref: DataplaneRef | None = Field(None, alias="dataplaneRef")
    dataplane_labels: LabelSelector | None = Field(None, alias="dataplaneLabels")


class Port(Strict):
    name: str | None = None
    port: int
    target_port: int | str | None = Field(None, alias="targetPort")
    app_protocol: str = Field("tcp", alias="appProtocol")

    @property
    def section_name(self) -> str:
        """Kuma's ``Port.GetName()``: the name, else the number as a string."""
        return self.name if self.name else str(self.port)


class Identity(Strict):
    type: Literal["ServiceTag", "SpiffeID"]
    value: str


class MeshServiceSpec(Strict):
    selector: Selector = Field(default_factory=Selector)
    ports: list[Port] = Field(default_factory=list)
    identities: list[Identity] | None = None
    state: MeshServiceState = MeshServiceState.UNAVAILABLE


class VIP(Strict):
    ip: str


class HostnameGeneratorRef(Strict):
    core_name: str = Field(alias="coreName")


class Address(Strict):
    hostname: str
    origin: str = "HostnameGenerator"
    hostname_generator_ref: HostnameGeneratorRef | None = Field(None, alias="hostnameGeneratorRef")


class Condition(Strict):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""


class HostnameGeneratorStatus(Strict):
    hostname_generator_ref: HostnameGeneratorRef = Field(alias="hostnameGeneratorRef")
    conditions: list[Condition] = Field(default_factory=list)


class TLSStatus(Strict):
    status: Literal["Ready", "NotReady"] = "NotReady"


class DataplaneProxies(Strict):
    connected: int = 0
    healthy: int = 0
    total: int = 0


class MeshServiceStatus(Strict):
    addresses: list[Address] = Field(default_factory=list)
    vips: list[VIP] = Field(default_factory=list)
    tls: TLSStatus | None = None
    hostname_generators: list[HostnameGeneratorStatus] = Field(default_factory=list, alias="hostnameGenerators")
    dataplane_proxies: DataplaneProxies | None = Field(None, alias="dataplaneProxies")


class MeshService(Strict, LabelNames):
    kind: Literal["MeshService"] = "MeshService"
    name: str
    mesh: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    spec: MeshServiceSpec = Field(default_factory=MeshServiceSpec)
    status: MeshServiceStatus = Field(default_factory=MeshServiceStatus)

    @property
    def is_local(self) -> bool:
        """Kuma's ``IsLocalMeshService``: no origin label, or origin zone."""
        return self.labels.get(ORIGIN_LABEL, "zone") == "zone"


# --------------------------------------------------------------------------- MeshMultiZoneService


class MultiZoneSelector(Strict):
    mesh_service: LabelSelector = Field(alias="meshService")


class MultiZonePort(Strict):
    name: str | None = None
    port: int
    app_protocol: str = Field("tcp", alias="appProtocol")

    @property
    def section_name(self) -> str:
        return self.name if self.name else str(self.port)


class MatchedMeshService(Strict):
    name: str
    namespace: str = ""
    zone: str = ""
    mesh: str


class MeshMultiZoneServiceSpec(Strict):
    selector: MultiZoneSelector
    ports: list[MultiZonePort]


class MeshMultiZoneServiceStatus(Strict):
    addresses: list[Address] = Field(default_factory=list)
    vips: list[VIP] = Field(default_factory=list)
    mesh_services: list[MatchedMeshService] = Field(default_factory=list, alias="meshServices")
    hostname_generators: list[HostnameGeneratorStatus] = Field(default_factory=list, alias="hostnameGenerators")
    conditions: list[Condition] = Field(default_factory=list)


class MeshMultiZoneService(Strict):
    kind: Literal["MeshMultiZoneService"] = "MeshMultiZoneService"
    name: str
    mesh: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    spec: MeshMultiZoneServiceSpec
    status: MeshMultiZoneServiceStatus = Field(default_factory=MeshMultiZoneServiceStatus)

    @property
    def display_name(self) -> str:
        return self.labels.get(DISPLAY_NAME_LABEL, self.name)


def find_port(svc: MeshService | MeshMultiZoneService, name: str) -> Port | MultiZonePort | None:
    """Kuma's ``FindPortByName`` (meshservice and meshmultizoneservice helpers.go): by name, or by the number
    as a string, first port first."""
    for p in svc.spec.ports:
        if p.name == name or str(p.port) == name:
            return p
    return None


# --------------------------------------------------------------------------- HostnameGenerator


class HostnameGeneratorSelector(Strict):
    mesh_service: LabelSelector | None = Field(None, alias="meshService")
    mesh_external_service: LabelSelector | None = Field(None, alias="meshExternalService")
    mesh_multi_zone_service: LabelSelector | None = Field(None, alias="meshMultiZoneService")


class HostnameGeneratorSpec(Strict):
    selector: HostnameGeneratorSelector
    template: str
    extension: dict[str, Any] | None = None


class HostnameGenerator(Strict):
    """Global-scoped (no mesh), as in Kuma."""

    kind: Literal["HostnameGenerator"] = "HostnameGenerator"
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    spec: HostnameGeneratorSpec


# --------------------------------------------------------------------------- ZoneIngress


class ZoneIngressNetworking(Strict):
    address: str
    advertised_address: str | None = Field(None, alias="advertisedAddress")
    port: int
    advertised_port: int | None = Field(None, alias="advertisedPort")
    admin: dict[str, Any] | None = None


class ZoneIngressSpec(Strict):
    zone: str = ""
    networking: ZoneIngressNetworking
    available_services: list[dict[str, Any]] | None = Field(None, alias="availableServices")


class ZoneIngress(Strict):
    """Global-scoped; ``spec.zone`` names the zone it fronts (empty = this zone)."""

    kind: Literal["ZoneIngress"] = "ZoneIngress"
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    spec: ZoneIngressSpec


# --------------------------------------------------------------------------- MeshTrafficPermission
# pkg/plugins/policies/meshtrafficpermission/api/v1alpha1/meshtrafficpermission.go (the targetRef + from[] form);
# rules and validation in mtp.py.


class Action(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"
    ALLOW_WITH_SHADOW_DENY = "AllowWithShadowDeny"


class PolicyTargetRef(Strict):
    kind: str
    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    tags: dict[str, str] | None = None
    mesh: str | None = None
    section_name: str | None = Field(None, alias="sectionName")


class Conf(Strict):
    action: Action | None = None


class From(Strict):
    target_ref: PolicyTargetRef = Field(alias="targetRef")
    default: Conf = Field(default_factory=Conf)


class MeshTrafficPermissionSpec(Strict):
    target_ref: PolicyTargetRef | None = Field(None, alias="targetRef")
    from_: list[From] | None = Field(None, alias="from")


class MeshTrafficPermission(Strict):
    kind: Literal["MeshTrafficPermission"] = "MeshTrafficPermission"
    name: str
    mesh: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    spec: MeshTrafficPermissionSpec = Field(default_factory=MeshTrafficPermissionSpec)


Resource = (
    Mesh | Dataplane | MeshService | MeshMultiZoneService | HostnameGenerator | ZoneIngress | MeshTrafficPermission
)

KINDS: dict[str, type[BaseModel]] = {
    "Mesh": Mesh,
    "Dataplane": Dataplane,
    "MeshService": MeshService,
    "MeshMultiZoneService": MeshMultiZoneService,
    "HostnameGenerator": HostnameGenerator,
    "ZoneIngress": ZoneIngress,
    "MeshTrafficPermission": MeshTrafficPermission,
}
