"""MeshTrafficPermission rules as Envoy RBAC on inbound chains, as Kuma's ``LegacyRBACConfigurer`` renders them
(``pkg/plugins/policies/meshtrafficpermission/xds/legacy_rbac_configurer.go``).

One ALLOW policy named ``MeshTrafficPermission`` with ``permissions: [{any: true}]`` and a principal per
Allow/AllowWithShadowDeny rule; no rule at all renders ``rules: {}`` (ALLOW with no policy: deny all,
Kuma's default with mTLS on). AllowWithShadowDeny rules also go into DENY ``shadowRules``. Principals:
``spiffe://<mesh>/<svc>`` (exact) for ``kuma.io/service``, ``kuma://<tag>/<value>`` for other tags,
several tags as ``andIds``, a negated tag as ``notId``, no tag (``from: Mesh``) as ``any``.
An HTTP chain gets ``envoy.filters.http.rbac`` first in its HCM; any other chain gets
``envoy.filters.network.rbac`` first, with stat prefix ``<listener stat name>.``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from envoy_data_plane.envoy.config.rbac.v3 import (
        Permission,
        Policy,
        Principal,
        PrincipalAuthenticated,
        PrincipalSet,
        Rbac,
        RbacAction,
    )
    from envoy_data_plane.envoy.extensions.filters.http.rbac.v3 import Rbac as HttpRbac
    from envoy_data_plane.envoy.extensions.filters.network.rbac.v3 import Rbac as NetworkRbac
    from envoy_data_plane.envoy.type.matcher.v3 import StringMatcher

from meshxds.codec import construct
from meshxds.resources.model import SERVICE_TAG, Action
from meshxds.resources.mtp import Rule, Tag
from meshxds.translators import protos as pb

if not TYPE_CHECKING:
    construct.install(globals())  # message classes build without validation (codec/construct.py)

NETWORK_RBAC = "envoy.filters.network.rbac"
HTTP_RBAC = "envoy.filters.http.rbac"
POLICY_NAME = "MeshTrafficPermission"


def _principal_for(mesh: str, tag: Tag) -> Principal:
    name = f"spiffe://{mesh}/{tag.value}" if tag.key == SERVICE_TAG else f"kuma://{tag.key}/{tag.value}"
    principal = Principal(authenticated=PrincipalAuthenticated(principal_name=StringMatcher(exact=name)))
    return Principal(not_id=principal) if tag.negated else principal


def principal(mesh: str, subset: Sequence[Tag]) -> Principal:
    ids = [_principal_for(mesh, t) for t in subset]
    if not ids:
        return Principal(any=True)
    if len(ids) == 1:
        return ids[0]
    return Principal(and_ids=PrincipalSet(ids=ids))


def _policy(principals: list[Principal]) -> Policy:
    return Policy(permissions=[Permission(any=True)], principals=principals)


@lru_cache(maxsize=4096)
def rbac_rules(mesh: str, rules: tuple[Rule, ...]) -> tuple[Rbac, Rbac | None]:
    """(rules, shadow rules) for one inbound."""
    allowed = [principal(mesh, r.subset) for r in rules if r.action == Action.ALLOW]
    allowed += [principal(mesh, r.subset) for r in rules if r.action == Action.ALLOW_WITH_SHADOW_DENY]
    shadow = [principal(mesh, r.subset) for r in rules if r.action == Action.ALLOW_WITH_SHADOW_DENY]
    main = Rbac(action=RbacAction.ALLOW, policies={POLICY_NAME: _policy(allowed)} if allowed else {})
    return main, (Rbac(action=RbacAction.DENY, policies={POLICY_NAME: _policy(shadow)}) if shadow else None)


@lru_cache(maxsize=4096)
def network_rbac(mesh: str, rules: tuple[Rule, ...], stat_prefix: str) -> pb.Filter:
    main, shadow = rbac_rules(mesh, rules)
    config = NetworkRbac(stat_prefix=f"{stat_prefix}.", rules=main, shadow_rules=shadow)
    return pb.Filter(name=NETWORK_RBAC, typed_config=pb.pack(config))


@lru_cache(maxsize=4096)
def http_rbac(mesh: str, rules: tuple[Rule, ...]) -> pb.HttpFilter:
    main, shadow = rbac_rules(mesh, rules)
    return pb.HttpFilter(name=HTTP_RBAC, typed_config=pb.pack(HttpRbac(rules=main, shadow_rules=shadow)))
