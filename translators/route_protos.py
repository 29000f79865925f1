"""The extra envoy-data-plane messages routes and policies build (matches, weighted clusters, filters,
retries, circuit breakers, health checks, load balancers), imported in one place like ``protos.py``."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from envoy_data_plane.envoy.config.cluster.v3 import (
        ClusterCommonLbConfig,
        ClusterLbPolicy,
        ClusterLeastRequestLbConfig,
        ClusterMaglevLbConfig,
        ClusterRingHashLbConfig,
        OutlierDetection,
    )
    from envoy_data_plane.envoy.config.core.v3 import (
        HeaderValue,
        HeaderValueOption,
        HeaderValueOptionHeaderAppendAction,
        HealthCheck,
        HealthCheckHttpHealthCheck,
        HealthCheckPayload,
        HealthCheckTcpHealthCheck,
        RuntimeFractionalPercent,
    )
    from envoy_data_plane.envoy.config.route.v3 import (
        HeaderMatcher,
        QueryParameterMatcher,
        RedirectAction,
        RedirectActionRedirectResponseCode,
        RetryPolicy,
        RetryPolicyRetryBackOff,
        RouteActionMaxStreamDuration,
        RouteActionRequestMirrorPolicy,
        WeightedCluster,
        WeightedClusterClusterWeight,
    )
    from envoy_data_plane.envoy.extensions.filters.network.tcp_proxy.v3 import (
        TcpProxyWeightedCluster,
        TcpProxyWeightedClusterClusterWeight,
    )
    from envoy_data_plane.envoy.type.matcher.v3 import RegexMatchAndSubstitute, RegexMatcher, StringMatcher
    from envoy_data_plane.envoy.type.v3 import FractionalPercent, FractionalPercentDenominatorType, Int64Range, Percent

from meshxds.codec import construct

if not TYPE_CHECKING:
    construct.install(globals())  # message classes build without validation (codec/construct.py)

__all__ = [
    "ClusterCommonLbConfig",
    "ClusterLbPolicy",
    "ClusterLeastRequestLbConfig",
    "ClusterMaglevLbConfig",
    "ClusterRingHashLbConfig",
    "FractionalPercent",
    "FractionalPercentDenominatorType",
    "HeaderMatcher",
    "HeaderValue",
    "HeaderValueOption",
    "HeaderValueOptionHeaderAppendAction",
    "HealthCheck",
    "HealthCheckHttpHealthCheck",
    "HealthCheckPayload",
    "HealthCheckTcpHealthCheck",
    "Int64Range",
    "OutlierDetection",
    "Percent",
    "QueryParameterMatcher",
    "RedirectAction",
    "RedirectActionRedirectResponseCode",
    "RegexMatchAndSubstitute",
    "RegexMatcher",
    "RetryPolicy",
    "RetryPolicyRetryBackOff",
    "RouteActionMaxStreamDuration",
    "RouteActionRequestMirrorPolicy",
    "RuntimeFractionalPercent",
    "StringMatcher",
    "TcpProxyWeightedCluster",
    "TcpProxyWeightedClusterClusterWeight",
    "WeightedCluster",
    "WeightedClusterClusterWeight",
]
