"""Mesh mTLS as Envoy config, as Kuma 2.14 renders it: SDS secrets, inbound and outbound TLS contexts.

Pure: the key material arrives from ``security`` (issued at the edge); listeners and clusters only
reference secrets by Kuma's names (``pkg/xds/envoy/names``): ``identity_cert:secret:<mesh>`` and
``mesh_ca:secret:<mesh>``, both over ADS (``pkg/xds/envoy/tls/v3/tls.go`` ``NewSecretConfigSource``).

- Inbound (``CreateDownstreamTlsContext``): require a client certificate signed by the mesh CA whose
  URI SAN starts with ``spiffe://<mesh>/``. PERMISSIVE adds a TLS inspector and three chains
  (``inbound_proxy_generator.go``): plaintext, the app's own TLS, and Kuma mTLS (ALPN ``kuma``).
- Outbound (``CreateUpstreamTlsContext``): our identity, the mesh CA, exact SPIFFE SAN match of the
  destination's identities, ALPN ``kuma`` and Kuma's SNI (``pkg/xds/envoy/tls/sni.go``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from envoy_data_plane.envoy.config.core.v3 import DataSource, TransportSocket
    from envoy_data_plane.envoy.config.listener.v3 import FilterChain, FilterChainMatch, ListenerFilter
    from envoy_data_plane.envoy.extensions.filters.listener.tls_inspector.v3 import TlsInspector
    from envoy_data_plane.envoy.extensions.transport_sockets.tls.v3 import (
        CertificateValidationContext,
        CommonTlsContext,
        CommonTlsContextCombinedCertificateValidationContext,
        DownstreamTlsContext,
        SdsSecretConfig,
        Secret,
        SubjectAltNameMatcher,
        SubjectAltNameMatcherSanType,
        TlsCertificate,
        UpstreamTlsContext,
    )
    from envoy_data_plane.envoy.type.matcher.v3 import StringMatcher

from meshxds.codec import construct
from meshxds.translators import protos as pb

if not TYPE_CHECKING:
    construct.install(globals())  # message classes build without validation (codec/construct.py)

TLS_SOCKET = "envoy.transport_sockets.tls"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
KUMA_ALPN = "kuma"
SNI_FORMAT_VERSION = "a"
DNS_LABEL_LIMIT = 63
SNI_KINDS = {"MeshService": "ms", "MeshExternalService": "mes", "MeshMultiZoneService": "mzms"}

__all__ = ["FilterChain", "Secret", "TransportSocket"]


def identity_secret_name(mesh: str) -> str:
    return f"identity_cert:secret:{mesh}"


def ca_secret_name(mesh: str) -> str:
    return f"mesh_ca:secret:{mesh}"


def identity_secret(mesh: str, cert_pem: bytes, key_pem: bytes) -> Secret:
    """``identity_cert:secret:<mesh>``: the proxy's certificate chain and key, inline."""
    cert = TlsCertificate(
        certificate_chain=DataSource(inline_bytes=cert_pem), private_key=DataSource(inline_bytes=key_pem)
    )
    return Secret(name=identity_secret_name(mesh), tls_certificate=cert)


@lru_cache(maxsize=1024)
def ca_secret(mesh: str, ca_pems: tuple[bytes, ...]) -> Secret:
    """``mesh_ca:secret:<mesh>``: the trusted roots, PEMs joined with a newline as Kuma does (one per mesh)."""
    trusted = b"\n".join(pem.rstrip(b"\n") for pem in ca_pems) + b"\n"
    context = CertificateValidationContext(trusted_ca=DataSource(inline_bytes=trusted))
    return Secret(name=ca_secret_name(mesh), validation_context=context)


@cache
def _sds(name: str) -> SdsSecretConfig:
    return SdsSecretConfig(name=name, sds_config=pb.ads())


def _common(mesh: str, san: SubjectAltNameMatcher, alpn: bool) -> CommonTlsContext:
    combined = CommonTlsContextCombinedCertificateValidationContext(
        default_validation_context=CertificateValidationContext(match_typed_subject_alt_names=[san]),
        validation_context_sds_secret_config=_sds(ca_secret_name(mesh)),
    )
    return CommonTlsContext(
        tls_certificate_sds_secret_configs=[_sds(identity_secret_name(mesh))],
        combined_validation_context=combined,
        alpn_protocols=[KUMA_ALPN] if alpn else [],
    )


def _uri_san(matcher: StringMatcher) -> SubjectAltNameMatcher:
    return SubjectAltNameMatcher(san_type=SubjectAltNameMatcherSanType.URI, matcher=matcher)


@cache
def downstream_tls(mesh: str) -> TransportSocket:
    """Inbound: client certificate required, signed by the mesh CA, SAN prefix ``spiffe://<mesh>/``."""
    san = _uri_san(StringMatcher(prefix=f"spiffe://{mesh}/"))
    context = DownstreamTlsContext(common_tls_context=_common(mesh, san, False), require_client_certificate=True)
    return TransportSocket(name=TLS_SOCKET, typed_config=pb.pack(context))


@lru_cache(maxsize=65536)
def upstream_tls(mesh: str, sni: str, identities: tuple[str, ...]) -> TransportSocket:
    """Outbound: exact SPIFFE SAN of the destination's identities (none: any identity of the mesh)."""
    if identities:
        sans = [_uri_san(StringMatcher(exact=spiffe)) for spiffe in identities]
    else:
        sans = [_uri_san(StringMatcher(prefix=f"spiffe://{mesh}/"))]
    combined = CommonTlsContextCombinedCertificateValidationContext(
        default_validation_context=CertificateValidationContext(match_typed_subject_alt_names=sans),
        validation_context_sds_secret_config=_sds(ca_secret_name(mesh)),
    )
    common = CommonTlsContext(
        tls_certificate_sds_secret_configs=[_sds(identity_secret_name(mesh))],
        combined_validation_context=combined,
        alpn_protocols=[KUMA_ALPN],
    )
    context = UpstreamTlsContext(common_tls_context=common, sni=sni)
    return TransportSocket(name=TLS_SOCKET, typed_config=pb.pack(context))


def spiffe_ids(mesh: str, identities: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """MeshService ``spec.identities`` as SPIFFE IDs (``meshroute/clusters.go`` ``Identities``):
    ServiceTag → ``spiffe://<mesh>/<value>``, SpiffeID → the value itself; sorted and unique."""
    out = {value if kind == "SpiffeID" else f"spiffe://{mesh}/{value}" for kind, value in identities}
    return tuple(sorted(out))


def fnv64a(data: bytes) -> bytes:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h.to_bytes(8, "big")


def sni_for_resource(name: str, mesh: str, kind: str, port: int) -> str:
    """Kuma's ``SNIForResource``: ``a<fnv64a(name;mesh;)>.<name>.<port>.<mesh>.<ms|mes|mzms>``."""
    digest = fnv64a(f"{name};{mesh};".encode()).hex()
    if len(name) > DNS_LABEL_LIMIT - 1:
        name = name[: DNS_LABEL_LIMIT - 1] + "x"
    if len(mesh) > DNS_LABEL_LIMIT - 1:
        mesh = mesh[: DNS_LABEL_LIMIT - 1] + "x"
    return f"{SNI_FORMAT_VERSION}{digest}.{name}.{port}.{mesh}.{SNI_KINDS[kind]}"


def sni_from_tags(tags: dict[str, str]) -> str:
    """Kuma's ``SNIFromTags`` for legacy kuma.io/service destinations: ``service{k=v,...}``."""
    service = tags.get("kuma.io/service", "")
    extra = ",".join(f"{k}={v}" for k, v in sorted(tags.items()) if k != "kuma.io/service")
    return f"{service}{{{extra}}}" if extra else service


@cache
def tls_inspector() -> ListenerFilter:
    return ListenerFilter(name=TLS_INSPECTOR, typed_config=pb.pack(TlsInspector()))


def strict_chain(chain: FilterChain, mesh: str) -> FilterChain:
    """The inbound chain with the mesh's server-side mTLS (STRICT)."""
    return FilterChain(filters=chain.filters, transport_socket=downstream_tls(mesh))


def permissive_chains(plain: FilterChain, secured: FilterChain, mesh: str) -> list[FilterChain]:
    """PERMISSIVE: plaintext and the app's own TLS pass without RBAC; Kuma mTLS (ALPN kuma) gets ``secured``
    (the chain with RBAC), in Kuma's order (golden ``inbound-proxy/6-envoy-config.golden.yaml``)."""
    return [
        FilterChain(filter_chain_match=FilterChainMatch(transport_protocol="raw_buffer"), filters=plain.filters),
        FilterChain(filter_chain_match=FilterChainMatch(transport_protocol="tls"), filters=plain.filters),
        FilterChain(
            filter_chain_match=FilterChainMatch(transport_protocol="tls", application_protocols=[KUMA_ALPN]),
            filters=secured.filters,
            transport_socket=downstream_tls(mesh),
        ),
    ]
