"""Synthetic meshes for the benchmark: S services x D Dataplanes x P ports, one mode, a fan-out.

The mesh is written as universal YAML and loaded through ``resources.load_catalog``, so the
benchmark measures the same Catalog (generated MeshServices, VIPs, status) users get.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshxds.resources import load_catalog
from meshxds.resources.catalog import Catalog

MODES = ("Disabled", "Everywhere", "ReachableBackends", "Exclusive")


@dataclass(frozen=True)
class MeshSpec:
    services: int = 1000
    dataplanes_per_service: int = 3
    ports: int = 1
    mode: str = "Exclusive"
    fanout: int = 0  # services each proxy reaches; 0 = every service
    mtls: bool = False  # builtin mTLS on the mesh, plus an allow-all MeshTrafficPermission

    @property
    def proxies(self) -> int:
        return self.services * self.dataplanes_per_service

    def reaches(self, service: int) -> list[int]:
        """The services a proxy of ``service`` lists in reachableBackends (its next ``fanout`` neighbours)."""
        if not self.fanout or self.fanout >= self.services:
            return []
        return [(service + k) % self.services for k in range(1, self.fanout + 1)]


def service_name(i: int) -> str:
    return f"svc-{i:05d}"


def dataplane_name(service: int, replica: int) -> str:
    return f"{service_name(service)}-{replica}"


def address(service: int, replica: int) -> str:
    n = service * 64 + replica + 1  # up to 64 replicas per service
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def protocol(service: int, port: int) -> str:
    """Every other service speaks HTTP, so both tcp_proxy and HCM+RDS outbounds are in the mix."""
    return "http" if (service + port) % 2 == 0 else "tcp"


def dataplane(spec: MeshSpec, service: int, replica: int, *, moved: bool = False) -> dict[str, Any]:
    name = service_name(service)
    inbound = [
        {
            "port": 8000 + p,
            "servicePort": 18000 + p,
            "tags": {"kuma.io/service": name, "kuma.io/protocol": protocol(service, p), "version": "v1"},
            **({"name": f"p{p}"} if spec.ports > 1 else {}),
        }
        for p in range(spec.ports)
    ]
    tproxy: dict[str, Any] = {"redirectPortInbound": 15006, "redirectPortOutbound": 15001}
    reach = spec.reaches(service)
    if reach:
        tproxy["reachableBackends"] = {"refs": [{"kind": "MeshService", "name": service_name(s)} for s in reach]}
    return {
        "type": "Dataplane",
        "name": dataplane_name(service, replica),
        "mesh": "default",
        "networking": {
            "address": "10.255.255.254" if moved else address(service, replica),
            "inbound": inbound,
            "transparentProxying": tproxy,
        },
    }


def documents(spec: MeshSpec) -> list[dict[str, Any]]:
    mesh: dict[str, Any] = {"type": "Mesh", "name": "default", "meshServices": {"mode": spec.mode}}
    policies: list[dict[str, Any]] = []
    if spec.mtls:
        mesh["mtls"] = {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]}
        allow = {"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}
        spec_ = {"targetRef": {"kind": "Mesh"}, "from": [allow]}
        policies.append({"type": "MeshTrafficPermission", "name": "allow-all", "mesh": "default", "spec": spec_})
    dps = [dataplane(spec, s, r) for s in range(spec.services) for r in range(spec.dataplanes_per_service)]
    return [mesh, *policies, *dps]


def write(spec: MeshSpec, directory: Path, docs: list[dict[str, Any]] | None = None) -> Path:
    path = directory / "mesh.yaml"
    path.write_text(yaml.dump_all(docs or documents(spec), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    return path


def load(path: Path, previous: Catalog | None = None) -> Catalog:
    result = load_catalog([path], previous=previous)
    if result.catalog is None:
        raise RuntimeError("synthetic mesh failed to load: " + "; ".join(str(e) for e in result.errors[:5]))
    return result.catalog


def build_catalog(spec: MeshSpec, directory: Path | None = None) -> Catalog:
    """Write and load the mesh (in a temporary directory unless one is given)."""
    if directory is not None:
        return load(write(spec, directory))
    with tempfile.TemporaryDirectory(prefix="meshxds-bench-") as tmp:
        return load(write(spec, Path(tmp)))


def with_endpoint_change(spec: MeshSpec, directory: Path, previous: Catalog) -> Catalog:
    """The same mesh with one Dataplane moved to a new IP: exactly one endpoint changes."""
    docs = documents(spec)
    last = spec.dataplanes_per_service - 1
    docs[(2 if spec.mtls else 1) + last] = dataplane(spec, 0, last, moved=True)
    return load(write(spec, directory, docs), previous=previous)
