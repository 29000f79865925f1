"""MeshHTTPRoute → an outbound's RouteConfiguration; MeshTCPRoute → its tcp_proxy splits (pure).

Kuma v2.14.3: ``meshhttproute/plugin/v1alpha1/listeners.go`` (``prepareRoutes``: one route per match,
sorted by ``CompareMatch``, a catch-all ``PathPrefix /`` appended, a route without backends sends to
the outbound itself, a route whose splits all drop is skipped), ``core/xds/meshroute`` (``MakeHTTPSplit``:
weight 0, unknown port or non-HTTP protocol drop a split; one split is ``cluster``, more are
``weighted_clusters`` without total), ``meshhttproute/xds/configurer.go`` and ``filters/*.go`` (path,
method, header and query matches; header modifiers, redirect, rewrite, mirror), and
``meshtcproute/plugin/v1alpha1/listeners_backendrefs.go`` (no backends left → no listener).
MeshTimeout and MeshRetry values for the routes come in already merged (``translators.policies``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from meshxds.resources import policies as p
from meshxds.resources.catalog import MeshView
from meshxds.resources.model import SERVICE_TAG
from meshxds.resources.targeting import resolve_backend
from meshxds.translators import protos as pb
from meshxds.translators import route_protos as rp
from meshxds.translators.dataplanes import is_http
from meshxds.translators.names import matches_hash
from meshxds.translators.outbounds import LEGACY, Destination, MeshOutbounds
from meshxds.translators.rules import HTTPRouteRule

CATCH_ALL = p.Match(path=p.PathMatch(type="PathPrefix", value="/"))
CATCH_ALL_NAME = matches_hash(p.match_json([CATCH_ALL]))
TCP_PROTOCOLS = ("", "tcp", "kafka", "http", "http2", "grpc")
DEFAULT_WEIGHT = 100  # svc.DefaultBackendRef()


@dataclass(frozen=True)
class Split:
    dest: Destination
    weight: int


@dataclass(frozen=True)
class HttpRoute:
    """One Envoy route-to-be: its name (origin KRI or matches hash), match, filters and splits."""

    name: str
    match: p.Match
    filters: tuple[p.Filter, ...]
    splits: tuple[Split, ...]
    mirrors: tuple[Destination | None, ...] = ()


def backend_dests(
    view: MeshView, outbounds: MeshOutbounds, policy: p.Policy, refs: Sequence[p.PolicyBackendRef]
) -> tuple[list[Split], int]:
    """Resolved backendRefs as destinations, and how many refs Kuma keeps although they lead nowhere
    (by name: they make the route skip instead of falling back to the outbound itself)."""
    out: list[Split] = []
    dead = 0
    for ref in refs:
        resolution = resolve_backend(view.mesh_services, view.multizone_services, policy, ref)
        dead += resolution.dead
        for backend in resolution.backends:
            dest: Destination | None
            if backend.service is not None and backend.port is not None:
                dest = outbounds.resource(backend.service, backend.port)
            else:
                dest = outbounds.legacy(dict(backend.legacy))
            if dest is not None:
                out.append(Split(dest, backend.weight))
            else:
                dead += 1  # a port Kuma builds no cluster for (unknown appProtocol)
    return out, dead


def http_splits(splits: Sequence[Split]) -> tuple[Split, ...]:
    """``MakeHTTPSplit``: weight 0 and non-HTTP destinations drop."""
    return tuple(s for s in splits if s.weight > 0 and is_http(s.dest.protocol))


def tcp_splits(splits: Sequence[Split]) -> tuple[Split, ...]:
    """``MakeTCPSplit``: weight 0 drops; every protocol Kuma accepts for TCP stays."""
    return tuple(s for s in splits if s.weight > 0 and s.dest.protocol in TCP_PROTOCOLS)


def mirror_dest(outbounds: MeshOutbounds, ref: p.PolicyBackendRef) -> Destination:
    """A RequestMirror backendRef is still resolved as a legacy ``kuma.io/service`` ref in Kuma 2.14."""
    return outbounds.legacy({SERVICE_TAG: ref.name or "", **(ref.tags or {})})


def compare_match(a: p.Match) -> tuple[int, int, int, int, int]:
    """A sort key equal to Kuma's ``CompareMatch`` order: Exact, longer prefix, longer regex, method, fewer..."""
    path = a.path
    if path is None:
        kind, length = 3, 0
    else:
        kind = {"Exact": 0, "PathPrefix": 1, "RegularExpression": 2}[path.type]
        length = 0 if path.type == "Exact" else -len(path.value)
    method = 0 if a.method is not None else 1
    return (kind, length, method, -len(a.headers or ()), -len(a.query_params or ()))


def plan_http_routes(
    view: MeshView,
    outbounds: MeshOutbounds,
    dest: Destination,
    rules: Sequence[HTTPRouteRule],
) -> list[HttpRoute]:
    """``prepareRoutes`` + ``generateFromService`` for one outbound."""
    planned: list[tuple[str, p.Match, tuple[p.Filter, ...], list[Split] | None, p.MeshHTTPRoute]] = []
    real = dest.kind != LEGACY
    for rule in rules:
        name = rule.origin.kri if real else matches_hash(p.match_json(list(rule.matches)))
        refs = rule.default.backend_refs or []
        filters = tuple(rule.default.filters or ())
        found, dead = backend_dests(view, outbounds, rule.origin, refs)
        splits = found if found or dead else None  # None: no backend, the outbound's own service
        for match in rule.matches:
            planned.append((name, match, filters, splits, rule.origin))
    planned.sort(key=lambda r: compare_match(r[1]))
    if not any(r[1] == CATCH_ALL for r in planned):
        planned.append((CATCH_ALL_NAME, CATCH_ALL, (), None, p.MeshHTTPRoute(name="")))
    out: list[HttpRoute] = []
    for name, match, filters, splits, _origin in planned:
        if match.path is None:
            match = match.model_copy(update={"path": CATCH_ALL.path})
        chosen = http_splits(splits if splits is not None else [Split(dest, DEFAULT_WEIGHT)])
        if not chosen:
            continue  # Kuma: a route with no splits left is skipped
        mirrors = tuple(
            mirror_dest(outbounds, f.request_mirror.backend_ref) if f.request_mirror else None
            for f in filters
            if f.type == "RequestMirror"
        )
        out.append(HttpRoute(name, match, filters, chosen, mirrors))
    return out


# --------------------------------------------------------------------------- Envoy messages


def regex(value: str) -> rp.RegexMatcher:
    return rp.RegexMatcher(regex=value)


def path_matches(path: p.PathMatch) -> list[tuple[pb.RouteMatch, bool]]:
    """(match, from a prefix) pairs: ``PathPrefix /x`` is ``path /x`` plus ``prefix /x/`` (Kuma's choice)."""
    if path.type == "Exact":
        return [(pb.RouteMatch(path=path.value), False)]
    if path.type == "RegularExpression":
        return [(pb.RouteMatch(safe_regex=regex(path.value)), False)]
    if path.value == "/":
        return [(pb.RouteMatch(prefix="/"), True)]
    trimmed = path.value.removesuffix("/")
    return [(pb.RouteMatch(path=trimmed), True), (pb.RouteMatch(prefix=trimmed + "/"), True)]


def header_matcher(h: p.HeaderMatch) -> rp.HeaderMatcher:
    kind = h.type or "Exact"
    if kind == "Present":
        return rp.HeaderMatcher(name=h.name, present_match=True)
    if kind == "Absent":
        return rp.HeaderMatcher(name=h.name, present_match=False)
    if kind == "RegularExpression":
        return rp.HeaderMatcher(name=h.name, string_match=rp.StringMatcher(safe_regex=regex(h.value)))
    if kind == "Prefix":
        return rp.HeaderMatcher(name=h.name, string_match=rp.StringMatcher(prefix=h.value))
    return rp.HeaderMatcher(name=h.name, string_match=rp.StringMatcher(exact=h.value))


def route_matches(match: p.Match) -> list[tuple[pb.RouteMatch, bool]]:
    """``routeMatch``: path, then ``:method``, query params and headers (first of each name wins)."""
    assert match.path is not None
    out = []
    for rm, from_prefix in path_matches(match.path):
        headers: list[rp.HeaderMatcher] = []
        if match.method is not None:
            headers.append(rp.HeaderMatcher(name=":method", string_match=rp.StringMatcher(exact=match.method)))
        seen: set[str] = set()
        queries = []
        for q in match.query_params or ():
            if q.name not in seen:
                seen.add(q.name)
                sm = (
                    rp.StringMatcher(exact=q.value)
                    if q.type == "Exact"
                    else rp.StringMatcher(safe_regex=regex(q.value))
                )
                queries.append(rp.QueryParameterMatcher(name=q.name, string_match=sm))
        seen = set()
        for h in match.headers or ():
            if h.name not in seen:
                seen.add(h.name)
                headers.append(header_matcher(h))
        out.append(
            (
                pb.RouteMatch(
                    path=rm.path, prefix=rm.prefix, safe_regex=rm.safe_regex, headers=headers, query_parameters=queries
                ),
                from_prefix,
            )
        )
    return out


def header_options(mod: p.HeaderModifier) -> tuple[list[rp.HeaderValueOption], list[str]]:
    """``headerModifiers``: set = overwrite-or-add, add = append-or-add, then removes."""
    action = rp.HeaderValueOptionHeaderAppendAction
    options = [
        rp.HeaderValueOption(
            header=rp.HeaderValue(key=h.name, value=h.value), append_action=action.OVERWRITE_IF_EXISTS_OR_ADD
        )
        for h in mod.set or ()
    ]
    options += [
        rp.HeaderValueOption(
            header=rp.HeaderValue(key=h.name, value=h.value), append_action=action.APPEND_IF_EXISTS_OR_ADD
        )
        for h in mod.add or ()
    ]
    return options, list(mod.remove or ())


def rewrite_regex(value: str) -> rp.RegexMatchAndSubstitute:
    return rp.RegexMatchAndSubstitute(pattern=regex(".*"), substitution=value)


REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}


def redirect_action(r: p.RequestRedirect, match: pb.RouteMatch, from_prefix: bool) -> rp.RedirectAction:
    action = rp.RedirectAction(
        host_redirect=r.hostname or "",
        port_redirect=r.port or 0,
        scheme_redirect=r.scheme,
        response_code=rp.RedirectActionRedirectResponseCode[REDIRECT_CODES[r.status_code]],
    )
    if r.path is not None:
        for name, value in path_rewrite(r.path, match, from_prefix).items():
            setattr(action, name, value)
    return action


def path_rewrite(path: p.PathModifier, match: pb.RouteMatch, from_prefix: bool) -> dict[str, object]:
    """``filters/urlrewrite.go``/``requestredirect.go``: a full path or a prefix rewrite; with a ``PathPrefix``
    match the ``path /x`` route gets a regex rewrite and the ``prefix /x/`` route a prefix rewrite."""
    if path.type == "ReplaceFullPath":
        return {"regex_rewrite": rewrite_regex(path.replace_full_path or "")}
    if from_prefix and match.path:
        return {"regex_rewrite": rewrite_regex(path.replace_prefix_match or "")}
    if from_prefix and match.prefix:
        return {"prefix_rewrite": path.replace_prefix_match or ""}
    return {}


def seconds(value: str | None) -> timedelta | None:
    if value is None:
        return None
    parsed = p.parse_duration(value)
    return None if parsed is None else timedelta(seconds=parsed)


@dataclass(frozen=True)
class RouteSettings:
    """What MeshTimeout and MeshRetry put on every route of an outbound (already merged)."""

    timeout: timedelta | None = None
    idle_timeout: timedelta | None = None
    max_stream_duration: timedelta | None = None
    retry: rp.RetryPolicy | None = None


def route_action(route: HttpRoute, settings: RouteSettings, match: pb.RouteMatch, from_prefix: bool) -> pb.RouteAction:
    kwargs: dict[str, object] = {"timeout": settings.timeout if settings.timeout is not None else timedelta(0)}
    if len(route.splits) == 1:
        kwargs["cluster"] = route.splits[0].dest.cluster
    else:
        weights = [rp.WeightedClusterClusterWeight(name=s.dest.cluster, weight=s.weight) for s in route.splits]
        kwargs["weighted_clusters"] = rp.WeightedCluster(clusters=weights)
    if settings.idle_timeout is not None:
        kwargs["idle_timeout"] = settings.idle_timeout
    if settings.max_stream_duration is not None:
        kwargs["max_stream_duration"] = rp.RouteActionMaxStreamDuration(
            max_stream_duration=settings.max_stream_duration
        )
    if settings.retry is not None:
        kwargs["retry_policy"] = settings.retry
    action = pb.RouteAction(**kwargs)
    mirrors = iter(route.mirrors)
    for f in route.filters:
        if f.type == "URLRewrite" and f.url_rewrite is not None:
            rw = f.url_rewrite
            if rw.hostname is not None:
                action.host_rewrite_literal = rw.hostname
            if rw.path is not None:
                for name, value in path_rewrite(rw.path, match, from_prefix).items():
                    setattr(action, name, value)
        elif f.type == "RequestMirror" and f.request_mirror is not None:
            dest = next(mirrors)
            if dest is None:
                continue
            fraction = None
            if f.request_mirror.percentage is not None:
                value = float(f.request_mirror.percentage)
                fraction = rp.RuntimeFractionalPercent(
                    default_value=rp.FractionalPercent(
                        numerator=int(value * 10_000), denominator=rp.FractionalPercentDenominatorType.MILLION
                    )
                )
            action.request_mirror_policies.append(
                rp.RouteActionRequestMirrorPolicy(cluster=dest.cluster, runtime_fraction=fraction)
            )
    return action


def envoy_routes(route: HttpRoute, settings: RouteSettings) -> list[pb.Route]:
    out = []
    for match, from_prefix in route_matches(route.match):
        req_add: list[rp.HeaderValueOption] = []
        req_remove: list[str] = []
        resp_add: list[rp.HeaderValueOption] = []
        resp_remove: list[str] = []
        redirect = None
        for f in route.filters:
            if f.type == "RequestHeaderModifier" and f.request_header_modifier is not None:
                add, remove = header_options(f.request_header_modifier)
                req_add += add
                req_remove += remove
            elif f.type == "ResponseHeaderModifier" and f.response_header_modifier is not None:
                add, remove = header_options(f.response_header_modifier)
                resp_add += add
                resp_remove += remove
            elif f.type == "RequestRedirect" and f.request_redirect is not None:
                redirect = redirect_action(f.request_redirect, match, from_prefix)
        kwargs: dict[str, object] = {
            "name": route.name,
            "match": match,
            "request_headers_to_add": req_add,
            "request_headers_to_remove": req_remove,
            "response_headers_to_add": resp_add,
            "response_headers_to_remove": resp_remove,
        }
        if redirect is not None:
            kwargs["redirect"] = redirect
        else:
            kwargs["route"] = route_action(route, settings, match, from_prefix)
        out.append(pb.Route(**kwargs))
    return out


def http_route_configuration(
    dest: Destination, routes: Sequence[HttpRoute], settings: RouteSettings
) -> pb.RouteConfiguration:
    """Named by the outbound's KRI (legacy: ``outbound:<service>``), one ``*`` virtual host named after the cluster."""
    envoy = [r for route in routes for r in envoy_routes(route, settings)]
    host = pb.VirtualHost(name=dest.cluster, domains=["*"], routes=envoy)
    return pb.RouteConfiguration(name=dest.route_name, virtual_hosts=[host], validate_clusters=False)


def tcp_proxy_target(splits: Sequence[Split]) -> dict[str, object]:
    """``TcpProxy`` fields for the splits: ``cluster`` for one, ``weighted_clusters`` for more."""
    if len(splits) == 1:
        return {"cluster": splits[0].dest.cluster}
    weights = [rp.TcpProxyWeightedClusterClusterWeight(name=s.dest.cluster, weight=s.weight) for s in splits]
    return {"weighted_clusters": rp.TcpProxyWeightedCluster(clusters=weights)}
