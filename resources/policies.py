"""Kuma's targeting resources as pydantic models: MeshHTTPRoute, MeshTCPRoute and the ``to[]`` policies.

Field names and enums are Kuma v2.14.3's (``pkg/plugins/policies/<policy>/api/v1alpha1/*.go``,
``api/common/v1alpha1/targetref.go``). Like ``model.py`` every model forbids unknown fields and is
frozen. Durations stay as the Go duration strings users write (``5s``, ``1h0m0s``, ``500ms``); the
validator checks them and the translators parse them with ``parse_duration``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from meshxds.resources.model import LabelNames, Strict

# --------------------------------------------------------------------------- common


class TargetRef(Strict):
    """``common_api.TargetRef``: which proxies (top level) or which destination (``to[]``) a policy means."""

    kind: str
    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    tags: dict[str, str] | None = None
    mesh: str | None = None
    section_name: str | None = Field(None, alias="sectionName")
    proxy_types: list[Literal["Sidecar", "Gateway"]] | None = Field(None, alias="proxyTypes")


class PolicyBackendRef(TargetRef):
    """``common_api.BackendRef``: a TargetRef plus ``weight`` (default 1) and ``port``."""

    weight: int | None = Field(None, ge=0)
    port: int | None = Field(None, ge=1, le=65535)

    def references_real_object(self) -> bool:
        """Kuma's ``ReferencesRealObject``: a MeshService ref is real only with a port or sectionName."""
        if self.kind == "MeshService":
            return bool(self.section_name) or self.port is not None
        return self.kind != "MeshServiceSubset"


# --------------------------------------------------------------------------- MeshHTTPRoute

HTTP_METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")


class PathMatch(Strict):
    type: Literal["Exact", "PathPrefix", "RegularExpression"]
    value: str


class HeaderMatch(Strict):
    type: Literal["Exact", "Present", "RegularExpression", "Absent", "Prefix"] | None = None  # None = Exact
    name: str
    value: str = ""


class QueryParamsMatch(Strict):
    type: Literal["Exact", "RegularExpression"]
    name: str
    value: str


class Match(Strict):
    path: PathMatch | None = None
    method: Literal["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"] | None = None
    query_params: list[QueryParamsMatch] | None = Field(None, alias="queryParams")
    headers: list[HeaderMatch] | None = None

    def key(self) -> str:
        """Kuma's match hash input: the match as JSON with Go's field order (``value`` before ``type``)."""
        return match_json([self])


class HeaderValue(Strict):
    name: str
    value: str


class HeaderModifier(Strict):
    set: list[HeaderValue] | None = None
    add: list[HeaderValue] | None = None
    remove: list[str] | None = None


class PathModifier(Strict):
    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    replace_full_path: str | None = Field(None, alias="replaceFullPath")
    replace_prefix_match: str | None = Field(None, alias="replacePrefixMatch")


class RequestRedirect(Strict):
    scheme: Literal["http", "https"] | None = None
    hostname: str | None = None
    path: PathModifier | None = None
    port: int | None = Field(None, ge=1, le=65535)
    status_code: Literal[301, 302, 303, 307, 308] = Field(302, alias="statusCode")


class URLRewrite(Strict):
    hostname: str | None = None
    path: PathModifier | None = None
    host_to_backend_hostname: bool = Field(False, alias="hostToBackendHostname")


class RequestMirror(Strict):
    backend_ref: PolicyBackendRef = Field(alias="backendRef")
    percentage: int | float | str | None = None


FILTER_TYPES = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "RequestMirror")


class Filter(Strict):
    type: Literal["RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "RequestMirror"]
    request_header_modifier: HeaderModifier | None = Field(None, alias="requestHeaderModifier")
    response_header_modifier: HeaderModifier | None = Field(None, alias="responseHeaderModifier")
    request_redirect: RequestRedirect | None = Field(None, alias="requestRedirect")
    url_rewrite: URLRewrite | None = Field(None, alias="urlRewrite")
    request_mirror: RequestMirror | None = Field(None, alias="requestMirror")


class HTTPRuleConf(Strict):
    filters: list[Filter] | None = None
    backend_refs: list[PolicyBackendRef] | None = Field(None, alias="backendRefs")


class HTTPRule(Strict):
    matches: list[Match] = Field(min_length=1)
    default: HTTPRuleConf = Field(default_factory=HTTPRuleConf)


class HTTPTo(Strict):
    target_ref: TargetRef = Field(alias="targetRef")
    hostnames: list[str] | None = None
    rules: list[HTTPRule] = Field(default_factory=list)


class MeshHTTPRouteSpec(Strict):
    target_ref: TargetRef | None = Field(None, alias="targetRef")
    to: list[HTTPTo] = Field(default_factory=list)


# --------------------------------------------------------------------------- MeshTCPRoute


class TCPRuleConf(Strict):
    backend_refs: list[PolicyBackendRef] | None = Field(None, alias="backendRefs")


class TCPRule(Strict):
    default: TCPRuleConf = Field(default_factory=TCPRuleConf)


class TCPTo(Strict):
    target_ref: TargetRef = Field(alias="targetRef")
    rules: list[TCPRule] = Field(default_factory=list)


class MeshTCPRouteSpec(Strict):
    target_ref: TargetRef | None = Field(None, alias="targetRef")
    to: list[TCPTo] = Field(default_factory=list)


# --------------------------------------------------------------------------- MeshTimeout


class TimeoutHTTP(Strict):
    request_timeout: str | None = Field(None, alias="requestTimeout")
    stream_idle_timeout: str | None = Field(None, alias="streamIdleTimeout")
    max_stream_duration: str | None = Field(None, alias="maxStreamDuration")
    max_connection_duration: str | None = Field(None, alias="maxConnectionDuration")
    request_headers_timeout: str | None = Field(None, alias="requestHeadersTimeout")


class TimeoutConf(Strict):
    connection_timeout: str | None = Field(None, alias="connectionTimeout")
    idle_timeout: str | None = Field(None, alias="idleTimeout")
    http: TimeoutHTTP | None = None


# --------------------------------------------------------------------------- MeshRetry


class BackOff(Strict):
    base_interval: str | None = Field(None, alias="baseInterval")
    max_interval: str | None = Field(None, alias="maxInterval")


class RetryTCP(Strict):
    max_connect_attempt: int | None = Field(None, alias="maxConnectAttempt", ge=1)


class RetryHTTP(Strict):
    num_retries: int | None = Field(None, alias="numRetries", ge=0)
    per_try_timeout: str | None = Field(None, alias="perTryTimeout")
    back_off: BackOff | None = Field(None, alias="backOff")
    retry_on: list[str] | None = Field(None, alias="retryOn")
    rate_limited_back_off: dict[str, Any] | None = Field(None, alias="rateLimitedBackOff")
    retriable_response_headers: list[dict[str, Any]] | None = Field(None, alias="retriableResponseHeaders")
    retriable_request_headers: list[dict[str, Any]] | None = Field(None, alias="retriableRequestHeaders")
    host_selection: list[dict[str, Any]] | None = Field(None, alias="hostSelection")
    host_selection_max_attempts: int | None = Field(None, alias="hostSelectionMaxAttempts")


class RetryGRPC(Strict):
    num_retries: int | None = Field(None, alias="numRetries", ge=0)
    per_try_timeout: str | None = Field(None, alias="perTryTimeout")
    back_off: BackOff | None = Field(None, alias="backOff")
    rate_limited_back_off: dict[str, Any] | None = Field(None, alias="rateLimitedBackOff")
    retry_on: list[str] | None = Field(None, alias="retryOn")


class RetryConf(Strict):
    tcp: RetryTCP | None = None
    http: RetryHTTP | None = None
    grpc: RetryGRPC | None = None


# --------------------------------------------------------------------------- MeshCircuitBreaker


class ConnectionLimits(Strict):
    max_connections: int | None = Field(None, alias="maxConnections", ge=1)
    max_connection_pools: int | None = Field(None, alias="maxConnectionPools", ge=1)
    max_pending_requests: int | None = Field(None, alias="maxPendingRequests", ge=1)
    max_requests: int | None = Field(None, alias="maxRequests", ge=1)
    max_retries: int | None = Field(None, alias="maxRetries", ge=0)


class Consecutive(Strict):
    consecutive: int | None = Field(None, ge=0)


class SuccessRate(Strict):
    minimum_hosts: int | None = Field(None, alias="minimumHosts")
    request_volume: int | None = Field(None, alias="requestVolume")
    standard_deviation_factor: int | float | str | None = Field(None, alias="standardDeviationFactor")


class FailurePercentage(Strict):
    minimum_hosts: int | None = Field(None, alias="minimumHosts")
    request_volume: int | None = Field(None, alias="requestVolume")
    threshold: int | None = None


class Detectors(Strict):
    total_failures: Consecutive | None = Field(None, alias="totalFailures")
    gateway_failures: Consecutive | None = Field(None, alias="gatewayFailures")
    local_origin_failures: Consecutive | None = Field(None, alias="localOriginFailures")
    success_rate: SuccessRate | None = Field(None, alias="successRate")
    failure_percentage: FailurePercentage | None = Field(None, alias="failurePercentage")


class OutlierDetection(Strict):
    disabled: bool | None = None
    interval: str | None = None
    base_ejection_time: str | None = Field(None, alias="baseEjectionTime")
    max_ejection_percent: int | None = Field(None, alias="maxEjectionPercent", ge=0, le=100)
    split_external_and_local_errors: bool | None = Field(None, alias="splitExternalAndLocalErrors")
    detectors: Detectors | None = None
    healthy_panic_threshold: int | float | str | None = Field(None, alias="healthyPanicThreshold")


class CircuitBreakerConf(Strict):
    connection_limits: ConnectionLimits | None = Field(None, alias="connectionLimits")
    outlier_detection: OutlierDetection | None = Field(None, alias="outlierDetection")


# --------------------------------------------------------------------------- MeshHealthCheck


class HealthCheckHTTP(Strict):
    disabled: bool | None = None
    path: str | None = None
    expected_statuses: list[int] | None = Field(None, alias="expectedStatuses")
    request_headers_to_add: dict[str, Any] | None = Field(None, alias="requestHeadersToAdd")


class HealthCheckTCP(Strict):
    disabled: bool | None = None
    send: str | None = None
    receive: list[str] | None = None


class HealthCheckConf(Strict):
    interval: str | None = None
    timeout: str | None = None
    unhealthy_threshold: int | None = Field(None, alias="unhealthyThreshold", ge=1)
    healthy_threshold: int | None = Field(None, alias="healthyThreshold", ge=1)
    initial_jitter: str | None = Field(None, alias="initialJitter")
    interval_jitter: str | None = Field(None, alias="intervalJitter")
    interval_jitter_percent: int | None = Field(None, alias="intervalJitterPercent")
    healthy_panic_threshold: int | float | str | None = Field(None, alias="healthyPanicThreshold")
    fail_traffic_on_panic: bool | None = Field(None, alias="failTrafficOnPanic")
    no_traffic_interval: str | None = Field(None, alias="noTrafficInterval")
    event_log_path: str | None = Field(None, alias="eventLogPath")
    always_log_health_check_failures: bool | None = Field(None, alias="alwaysLogHealthCheckFailures")
    reuse_connection: bool | None = Field(None, alias="reuseConnection")
    tcp: HealthCheckTCP | None = None
    http: HealthCheckHTTP | None = None
    grpc: dict[str, Any] | None = None


# --------------------------------------------------------------------------- MeshLoadBalancingStrategy


class LeastRequest(Strict):
    choice_count: int | None = Field(None, alias="choiceCount", ge=2)
    active_request_bias: int | float | str | None = Field(None, alias="activeRequestBias")


class RingHash(Strict):
    hash_function: Literal["XXHash", "MurmurHash2"] | None = Field(None, alias="hashFunction")
    min_ring_size: int | None = Field(None, alias="minRingSize", ge=1)
    max_ring_size: int | None = Field(None, alias="maxRingSize", ge=1)
    hash_policies: list[dict[str, Any]] | None = Field(None, alias="hashPolicies")


class Maglev(Strict):
    table_size: int | None = Field(None, alias="tableSize", ge=1)
    hash_policies: list[dict[str, Any]] | None = Field(None, alias="hashPolicies")


class LoadBalancer(Strict):
    type: Literal["RoundRobin", "LeastRequest", "RingHash", "Random", "Maglev"]
    least_request: LeastRequest | None = Field(None, alias="leastRequest")
    ring_hash: RingHash | None = Field(None, alias="ringHash")
    maglev: Maglev | None = None


class LocalityAwareness(Strict):
    disabled: bool | None = None
    local_zone: dict[str, Any] | None = Field(None, alias="localZone")
    cross_zone: dict[str, Any] | None = Field(None, alias="crossZone")


class LoadBalancingConf(Strict):
    load_balancer: LoadBalancer | None = Field(None, alias="loadBalancer")
    locality_awareness: LocalityAwareness | None = Field(None, alias="localityAwareness")
    hash_policies: list[dict[str, Any]] | None = Field(None, alias="hashPolicies")


# --------------------------------------------------------------------------- generic to[] policies


class TimeoutTo(Strict):
    target_ref: TargetRef = Field(alias="targetRef")
    default: TimeoutConf = Field(default_factory=TimeoutConf)


class RetryTo(Strict):
    target_ref: TargetRef = Field(alias="targetRef")
    default: RetryConf = Field(default_factory=RetryConf)


class CircuitBreakerTo(Strict):
    target_ref: TargetRef = Field(alias="targetRef")
    default: CircuitBreakerConf = Field(default_factory=CircuitBreakerConf)


class HealthCheckTo(Strict):
    target_ref: TargetRef = Field(alias="targetRef")
    default: HealthCheckConf = Field(default_factory=HealthCheckConf)


class LoadBalancingTo(Strict):
    target_ref: TargetRef = Field(alias="targetRef")
    default: LoadBalancingConf = Field(default_factory=LoadBalancingConf)


class FromEntry(Strict):
    """Inbound (``from[]``) entries are accepted and kept, but meshxds applies only ``to[]``."""

    target_ref: TargetRef = Field(alias="targetRef")
    default: dict[str, Any] = Field(default_factory=dict)


class MeshTimeoutSpec(Strict):
    target_ref: TargetRef | None = Field(None, alias="targetRef")
    to: list[TimeoutTo] = Field(default_factory=list)
    from_: list[FromEntry] | None = Field(None, alias="from")
    rules: list[dict[str, Any]] | None = None


class MeshRetrySpec(Strict):
    target_ref: TargetRef | None = Field(None, alias="targetRef")
    to: list[RetryTo] = Field(default_factory=list)


class MeshCircuitBreakerSpec(Strict):
    target_ref: TargetRef | None = Field(None, alias="targetRef")
    to: list[CircuitBreakerTo] = Field(default_factory=list)
    from_: list[FromEntry] | None = Field(None, alias="from")
    rules: list[dict[str, Any]] | None = None


class MeshHealthCheckSpec(Strict):
    target_ref: TargetRef | None = Field(None, alias="targetRef")
    to: list[HealthCheckTo] = Field(default_factory=list)


class MeshLoadBalancingStrategySpec(Strict):
    target_ref: TargetRef | None = Field(None, alias="targetRef")
    to: list[LoadBalancingTo] = Field(default_factory=list)


# --------------------------------------------------------------------------- resources


class Policy(Strict, LabelNames):
    """Common shape: mesh-scoped, named, labelled; ``spec`` differs per kind."""

    kind: str
    name: str
    mesh: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def short(self) -> str:
        return SHORT_NAMES[self.kind]

    @property
    def kri(self) -> str:
        """``kri_<short>_<mesh>_<zone>_<namespace>_<name>_`` (``kri.FromResourceMeta``)."""
        return f"kri_{self.short}_{self.mesh}_{self.zone}_{self.namespace}_{self.display_name}_"


class MeshHTTPRoute(Policy):
    kind: Literal["MeshHTTPRoute"] = "MeshHTTPRoute"
    spec: MeshHTTPRouteSpec = Field(default_factory=MeshHTTPRouteSpec)


class MeshTCPRoute(Policy):
    kind: Literal["MeshTCPRoute"] = "MeshTCPRoute"
    spec: MeshTCPRouteSpec = Field(default_factory=MeshTCPRouteSpec)


class MeshTimeout(Policy):
    kind: Literal["MeshTimeout"] = "MeshTimeout"
    spec: MeshTimeoutSpec = Field(default_factory=MeshTimeoutSpec)


class MeshRetry(Policy):
    kind: Literal["MeshRetry"] = "MeshRetry"
    spec: MeshRetrySpec = Field(default_factory=MeshRetrySpec)


class MeshCircuitBreaker(Policy):
    kind: Literal["MeshCircuitBreaker"] = "MeshCircuitBreaker"
    spec: MeshCircuitBreakerSpec = Field(default_factory=MeshCircuitBreakerSpec)


class MeshHealthCheck(Policy):
    kind: Literal["MeshHealthCheck"] = "MeshHealthCheck"
    spec: MeshHealthCheckSpec = Field(default_factory=MeshHealthCheckSpec)


class MeshLoadBalancingStrategy(Policy):
    kind: Literal["MeshLoadBalancingStrategy"] = "MeshLoadBalancingStrategy"
    spec: MeshLoadBalancingStrategySpec = Field(default_factory=MeshLoadBalancingStrategySpec)


AnyPolicy = (
    MeshHTTPRoute
    | MeshTCPRoute
    | MeshTimeout
    | MeshRetry
    | MeshCircuitBreaker
    | MeshHealthCheck
    | MeshLoadBalancingStrategy
)

POLICY_KINDS: dict[str, type[BaseModel]] = {
    "MeshHTTPRoute": MeshHTTPRoute,
    "MeshTCPRoute": MeshTCPRoute,
    "MeshTimeout": MeshTimeout,
    "MeshRetry": MeshRetry,
    "MeshCircuitBreaker": MeshCircuitBreaker,
    "MeshHealthCheck": MeshHealthCheck,
    "MeshLoadBalancingStrategy": MeshLoadBalancingStrategy,
}

# ``zz_generated.resource.go`` ShortName of each kind (the KRI's second field).
SHORT_NAMES = {
    "MeshHTTPRoute": "mhttpr",
    "MeshTCPRoute": "mtcpr",
    "MeshTimeout": "mt",
    "MeshRetry": "mr",
    "MeshCircuitBreaker": "mcb",
    "MeshHealthCheck": "mhc",
    "MeshLoadBalancingStrategy": "mlbs",
}


# --------------------------------------------------------------------------- helpers

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Go's ``time.ParseDuration`` (as ``metav1.Duration`` reads it), in seconds; None if invalid."""
    if text == "0":
        return 0.0
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if not body:
        return None
    total, pos = 0.0, 0
    for part in _DURATION_PART.finditer(body):
        if part.start() != pos:
            return None
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        pos = part.end()
    return sign * total if pos == len(body) else None


def match_json(matches: list[Match]) -> str:
    """``json.Marshal([]Match)`` with Go's struct field order, the input of Kuma's ``HashMatches``."""

    def path(p: PathMatch) -> dict[str, Any]:
        return {"value": p.value, "type": p.type}

    def header(h: HeaderMatch) -> dict[str, Any]:
        d: dict[str, Any] = {"type": h.type} if h.type else {}
        d["name"] = h.name
        if h.value:
            d["value"] = h.value
        return d

    out = []
    for m in matches:
        d: dict[str, Any] = {}
        if m.path is not None:
            d["path"] = path(m.path)
        if m.method is not None:
            d["method"] = m.method
        if m.query_params is not None:
            d["queryParams"] = [{"type": q.type, "name": q.name, "value": q.value} for q in m.query_params]
        if m.headers is not None:
            d["headers"] = [header(h) for h in m.headers]
        out.append(d)
    return json.dumps(out, separators=(",", ":"))
