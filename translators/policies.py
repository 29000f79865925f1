"""Merged ``to[]`` policies → Envoy settings for one destination (pure).

Kuma v2.14.3 sources, per policy:
- MeshTimeout (``meshtimeout/plugin/xds``): cluster ``connect_timeout`` and HTTP protocol options
  (``idle_timeout``, ``max_connection_duration``, ``max_stream_duration``); route ``timeout`` =
  ``http.requestTimeout``, ``idle_timeout`` = ``http.streamIdleTimeout``; tcp_proxy ``idle_timeout``.
- MeshRetry (``meshretry/plugin/xds/configurer.go``): per route ``retry_policy`` (retryOn default
  ``gateway-error,connect-failure,refused-stream``; status codes add ``retriable-status-codes``; methods
  become ``:method`` matchers; ``numRetries: 0`` means no policy); tcp_proxy ``max_connect_attempts``.
- MeshCircuitBreaker (``meshcircuitbreaker/plugin/xds/configurer.go``): the default threshold with
  ``track_remaining`` and the connection limits; outlier detection with each unset detector's
  ``enforcing_*`` at 0 and each set one at 100.
- MeshHealthCheck (``meshhealthcheck/plugin/xds``): one active health check, HTTP when the port is HTTP.
- MeshLoadBalancingStrategy (``meshloadbalancingstrategy/plugin/xds``): ``lb_policy`` and its config.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from meshxds.resources import policies as p
from meshxds.translators import protos as pb
from meshxds.translators import route_protos as rp
from meshxds.translators.dataplanes import is_http
from meshxds.translators.outbounds import Destination
from meshxds.translators.routes import RouteSettings, seconds
from meshxds.translators.rules import ProxyRules

HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP_RETRY_ON = "gateway-error,connect-failure,refused-stream"
GRPC_RETRY_ON = "cancelled,connect-failure,gateway-error,refused-stream,reset,resource-exhausted,unavailable"
RETRY_ON = {
    "All5xx": "5xx",
    "GatewayError": "gateway-error",
    "Reset": "reset",
    "Retriable4xx": "retriable-4xx",
    "ConnectFailure": "connect-failure",
    "EnvoyRatelimited": "envoy-ratelimited",
    "RefusedStream": "refused-stream",
    "Http3PostConnectFailure": "http3-post-connect-failure",
    "Canceled": "canceled",
    "DeadlineExceeded": "deadline-exceeded",
    "Internal": "internal",
    "ResourceExhausted": "resource-exhausted",
    "Unavailable": "unavailable",
}
METHOD_PREFIX = "HttpMethod"
# Kuma's MeshHealthCheck defaults (meshhealthcheck/api/v1alpha1 docs): interval 1m, timeout 15s, 5 / 1.
HC_INTERVAL, HC_TIMEOUT, HC_UNHEALTHY, HC_HEALTHY = "1m", "15s", 5, 1
LB_POLICIES = {
    "RoundRobin": "ROUND_ROBIN",
    "LeastRequest": "LEAST_REQUEST",
    "RingHash": "RING_HASH",
    "Random": "RANDOM",
    "Maglev": "MAGLEV",
}


@dataclass(frozen=True)
class DestinationPolicies:
    """The merged confs of one destination for one set of applying policies (None = no policy)."""

    timeout: p.TimeoutConf | None = None
    retry: p.RetryConf | None = None
    circuit_breaker: p.CircuitBreakerConf | None = None
    health_check: p.HealthCheckConf | None = None
    load_balancing: p.LoadBalancingConf | None = None

    def content(self) -> str:
        """A content key for memos across builds."""
        parts = [c.model_dump_json(by_alias=True, exclude_none=True) if c is not None else "-" for c in self.confs]
        return "|".join(parts)

    @property
    def confs(self) -> tuple[Any, ...]:
        return (self.timeout, self.retry, self.circuit_breaker, self.health_check, self.load_balancing)


MODELS: dict[str, type[Any]] = {
    "MeshTimeout": p.TimeoutConf,
    "MeshRetry": p.RetryConf,
    "MeshCircuitBreaker": p.CircuitBreakerConf,
    "MeshHealthCheck": p.HealthCheckConf,
    "MeshLoadBalancingStrategy": p.LoadBalancingConf,
}


def destination_policies(rules: ProxyRules, dest: Destination) -> DestinationPolicies:
    """``ResourceRules.Compute`` for every policy kind (legacy destinations by ``kuma.io/service``)."""
    legacy = dest.service if not dest.kri else ""
    out: dict[str, Any] = {}
    for kind, model in MODELS.items():
        merged = rules.compute(kind, dest.kri, dest.kri_resource, legacy)
        out[kind] = merged.model(model) if merged is not None else None
    return DestinationPolicies(
        out["MeshTimeout"],
        out["MeshRetry"],
        out["MeshCircuitBreaker"],
        out["MeshHealthCheck"],
        out["MeshLoadBalancingStrategy"],
    )


# --------------------------------------------------------------------------- routes and tcp_proxy


def retry_policy(conf: p.RetryConf | None, protocol: str) -> rp.RetryPolicy | None:
    """``GetRouteRetryConfig``: gRPC settings on a grpc port, HTTP settings otherwise."""
    if conf is None:
        return None
    section: p.RetryHTTP | p.RetryGRPC | None = conf.grpc if protocol == "grpc" else conf.http
    if section is None:
        return None
    if section.num_retries == 0:
        return None
    policy = rp.RetryPolicy(retry_on=GRPC_RETRY_ON if protocol == "grpc" else HTTP_RETRY_ON)
    policy.per_try_timeout = seconds(section.per_try_timeout)
    if section.num_retries is not None:
        policy.num_retries = section.num_retries
    if section.back_off is not None:
        policy.retry_back_off = rp.RetryPolicyRetryBackOff(
            base_interval=seconds(section.back_off.base_interval) or timedelta(milliseconds=25),
            max_interval=seconds(section.back_off.max_interval),
        )
    retry_on: list[str] = []
    codes: list[int] = []
    methods: list[str] = []
    for item in section.retry_on or ():
        if item.isdigit() and 100 <= int(item) <= 599:
            codes.append(int(item))
        elif item.startswith(METHOD_PREFIX):
            methods.append(item.removeprefix(METHOD_PREFIX).upper())
        else:
            retry_on.append(RETRY_ON.get(item, item))
    if retry_on:
        policy.retry_on = ",".join(retry_on)
    if codes:
        policy.retriable_status_codes = codes
        if "retriable-status-codes" not in policy.retry_on.split(","):
            policy.retry_on += ",retriable-status-codes"
    for method in methods:
        policy.retriable_request_headers.append(
            rp.HeaderMatcher(name=":method", string_match=rp.StringMatcher(exact=method))
        )
    if isinstance(section, p.RetryHTTP) and section.host_selection_max_attempts is not None:
        policy.host_selection_retry_max_attempts = section.host_selection_max_attempts
    return policy


DEFAULT_ROUTE = RouteSettings(timeout=timedelta(seconds=15), idle_timeout=timedelta(seconds=1800))


def route_settings(pol: DestinationPolicies, protocol: str) -> RouteSettings:
    """Route timeouts and retries; without a MeshTimeout the values of Kuma's default one (15s / 30m)."""
    http = (pol.timeout.http if pol.timeout is not None else None) or p.TimeoutHTTP()
    timeout = seconds(http.request_timeout)  # ``toProtoDurationOrDefault``: unset values take Kuma's defaults
    idle = seconds(http.stream_idle_timeout)
    return RouteSettings(
        timeout if timeout is not None else DEFAULT_ROUTE.timeout,
        idle if idle is not None else DEFAULT_ROUTE.idle_timeout,
        seconds(http.max_stream_duration),
        retry_policy(pol.retry, protocol),
    )


def tcp_settings(pol: DestinationPolicies) -> dict[str, Any]:
    """tcp_proxy ``idle_timeout`` (MeshTimeout ``idleTimeout``, default 1h) and ``max_connect_attempts``."""
    idle = seconds(pol.timeout.idle_timeout) if pol.timeout is not None else None
    out: dict[str, Any] = {"idle_timeout": idle if idle is not None else timedelta(hours=1)}
    if pol.retry is not None and pol.retry.tcp is not None and pol.retry.tcp.max_connect_attempt is not None:
        out["max_connect_attempts"] = pol.retry.tcp.max_connect_attempt
    return out


# --------------------------------------------------------------------------- clusters


def cluster_overrides(dest: Destination, pol: DestinationPolicies) -> dict[str, Any]:
    """``pb.Cluster`` fields that the policies set, to lay over the outbound cluster's defaults."""
    out: dict[str, Any] = {}
    t = pol.timeout
    if t is not None:
        out["connect_timeout"] = seconds(t.connection_timeout) or timedelta(seconds=5)
        out["typed_extension_protocol_options"] = {HTTP_OPTIONS_KEY: protocol_options(dest, t)}
    if pol.circuit_breaker is not None:
        out.update(circuit_breaker(pol.circuit_breaker))
    if pol.health_check is not None:
        out["health_checks"] = [health_check(pol.health_check, dest)]
        if pol.health_check.healthy_panic_threshold is not None:
            out["common_lb_config"] = panic_threshold(pol.health_check.healthy_panic_threshold)
    if pol.load_balancing is not None and pol.load_balancing.load_balancer is not None:
        out.update(load_balancer(pol.load_balancing.load_balancer))
    return out


def protocol_options(dest: Destination, t: p.TimeoutConf) -> pb.Any:
    """h2 to the peer sidecar, plus the HTTP timeouts for HTTP ports (as ``clusters.protocol_options``)."""
    explicit = pb.HttpProtocolOptionsExplicitHttpConfig(http2_protocol_options=pb.Http2ProtocolOptions())
    common = None
    if is_http(dest.protocol):
        http = t.http or p.TimeoutHTTP()
        common = pb.HttpProtocolOptions(
            idle_timeout=seconds(t.idle_timeout) or timedelta(hours=1),
            max_connection_duration=seconds(http.max_connection_duration) or timedelta(0),
            max_stream_duration=seconds(http.max_stream_duration) or timedelta(0),
        )
    opts = pb.UpstreamHttpProtocolOptions(common_http_protocol_options=common, explicit_http_config=explicit)
    return pb.pack(opts)


def circuit_breaker(conf: p.CircuitBreakerConf) -> dict[str, Any]:
    out: dict[str, Any] = {}
    limits = conf.connection_limits or p.ConnectionLimits()
    threshold = pb.CircuitBreakersThresholds(
        track_remaining=True,
        max_connections=limits.max_connections,
        max_pending_requests=limits.max_pending_requests,
        max_requests=limits.max_requests,
        max_retries=limits.max_retries,
    )
    if limits.max_connection_pools is not None:
        threshold.max_connection_pools = limits.max_connection_pools
    out["circuit_breakers"] = pb.CircuitBreakers(thresholds=[threshold])
    od = conf.outlier_detection
    if od is not None and not od.disabled:
        out["outlier_detection"] = outlier_detection(od)
        if od.healthy_panic_threshold is not None:
            out["common_lb_config"] = panic_threshold(od.healthy_panic_threshold)
    return out


def outlier_detection(od: p.OutlierDetection) -> rp.OutlierDetection:
    d = od.detectors or p.Detectors()
    out = rp.OutlierDetection(
        interval=seconds(od.interval),
        base_ejection_time=seconds(od.base_ejection_time),
        max_ejection_percent=od.max_ejection_percent,
        split_external_local_origin_errors=bool(od.split_external_and_local_errors),
    )
    total = d.total_failures.consecutive if d.total_failures else None
    out.enforcing_consecutive_5xx = 0 if total is None else 100
    out.consecutive_5xx = total
    gateway = d.gateway_failures.consecutive if d.gateway_failures else None
    out.enforcing_consecutive_gateway_failure = 0 if gateway is None else 100
    out.consecutive_gateway_failure = gateway
    local = d.local_origin_failures.consecutive if d.local_origin_failures else None
    out.enforcing_consecutive_local_origin_failure = 0 if local is None else 100
    out.consecutive_local_origin_failure = local
    sr = d.success_rate
    out.enforcing_success_rate = 0 if sr is None else 100
    out.enforcing_local_origin_success_rate = 0 if sr is None else 100
    if sr is not None:
        out.success_rate_minimum_hosts = sr.minimum_hosts
        out.success_rate_request_volume = sr.request_volume
        if sr.standard_deviation_factor is not None:
            out.success_rate_stdev_factor = int(Decimal(str(sr.standard_deviation_factor)) * 1000)
    fp = d.failure_percentage
    out.enforcing_failure_percentage = 0 if fp is None else 100
    out.enforcing_failure_percentage_local_origin = 0 if fp is None else 100
    if fp is not None:
        out.failure_percentage_minimum_hosts = fp.minimum_hosts
        out.failure_percentage_request_volume = fp.request_volume
        out.failure_percentage_threshold = fp.threshold
    return out


def panic_threshold(value: int | float | str) -> rp.ClusterCommonLbConfig:
    return rp.ClusterCommonLbConfig(healthy_panic_threshold=rp.Percent(value=float(value)))


def health_check(conf: p.HealthCheckConf, dest: Destination) -> rp.HealthCheck:
    hc = rp.HealthCheck(
        interval=seconds(conf.interval or HC_INTERVAL),
        timeout=seconds(conf.timeout or HC_TIMEOUT),
        unhealthy_threshold=conf.unhealthy_threshold or HC_UNHEALTHY,
        healthy_threshold=conf.healthy_threshold or HC_HEALTHY,
        initial_jitter=seconds(conf.initial_jitter),
        interval_jitter=seconds(conf.interval_jitter),
        interval_jitter_percent=conf.interval_jitter_percent or 0,
        no_traffic_interval=seconds(conf.no_traffic_interval),
        event_log_path=conf.event_log_path or "",
        always_log_health_check_failures=bool(conf.always_log_health_check_failures),
        reuse_connection=conf.reuse_connection,
    )
    http = conf.http
    if is_http(dest.protocol) and not (http is not None and http.disabled):
        statuses = [rp.Int64Range(start=s, end=s + 1) for s in (http.expected_statuses or [])] if http else []
        hc.http_health_check = rp.HealthCheckHttpHealthCheck(
            path=(http.path if http and http.path else "/"), expected_statuses=statuses
        )
    elif not (conf.tcp is not None and conf.tcp.disabled):
        tcp = conf.tcp or p.HealthCheckTCP()
        hc.tcp_health_check = rp.HealthCheckTcpHealthCheck(
            send=rp.HealthCheckPayload(text=tcp.send.encode().hex()) if tcp.send else None,
            receive=[rp.HealthCheckPayload(text=r.encode().hex()) for r in tcp.receive or ()],
        )
    return hc


def load_balancer(lb: p.LoadBalancer) -> dict[str, Any]:
    out: dict[str, Any] = {"lb_policy": rp.ClusterLbPolicy[LB_POLICIES[lb.type]]}
    if lb.type == "LeastRequest" and lb.least_request is not None and lb.least_request.choice_count is not None:
        out["least_request_lb_config"] = rp.ClusterLeastRequestLbConfig(choice_count=lb.least_request.choice_count)
    if lb.type == "RingHash" and lb.ring_hash is not None:
        rh = lb.ring_hash
        out["ring_hash_lb_config"] = rp.ClusterRingHashLbConfig(
            minimum_ring_size=rh.min_ring_size, maximum_ring_size=rh.max_ring_size
        )
    if lb.type == "Maglev" and lb.maglev is not None and lb.maglev.table_size is not None:
        out["maglev_lb_config"] = rp.ClusterMaglevLbConfig(table_size=lb.maglev.table_size)
    return out
