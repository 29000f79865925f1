"""Properties over random meshes: every valid input translates into consistent snapshots, meshes
stay isolated, Exclusive never yields legacy clusters, and output is deterministic."""

from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from meshxds.resources import load_catalog
from meshxds.snapshots.builder import snapshots_for
from meshxds.snapshots.snapshot import CLUSTER, LISTENER
from meshxds.translators.outbounds import canonical_address

MODES = ("Disabled", "Everywhere", "ReachableBackends", "Exclusive")
SERVICES = ("alpha", "beta", "gamma")
TP = {"redirectPortInbound": 15006, "redirectPortOutbound": 15001}


@st.composite
def inbound(draw: st.DrawFn, port: int) -> dict[str, Any]:
    tags = {"kuma.io/service": draw(st.sampled_from(SERVICES))}
    protocol = draw(st.sampled_from([None, "http", "tcp", "grpc"]))
    if protocol:
        tags["kuma.io/protocol"] = protocol
    out: dict[str, Any] = {"port": port, "tags": tags, "name": f"p{port}"}
    state = draw(st.sampled_from([None, "Ready", "NotReady", "Ignored"]))
    if state:
        out["state"] = state
    if draw(st.booleans()):
        out["health"] = {"ready": draw(st.booleans())}
    return out


@st.composite
def dataplane(draw: st.DrawFn, mesh: str, index: int) -> dict[str, Any]:
    ports = draw(st.lists(st.sampled_from([8080, 8081, 9090]), min_size=1, max_size=2, unique=True))
    networking: dict[str, Any] = {
        "address": f"10.{len(mesh)}.0.{index + 1}",
        "inbound": [draw(inbound(p)) for p in ports],
    }
    if draw(st.booleans()):
        tp: dict[str, Any] = dict(TP)
        if draw(st.booleans()):
            tp["reachableServices"] = draw(st.lists(st.sampled_from(SERVICES), max_size=2, unique=True))
        if draw(st.booleans()):
            refs = [
                {"kind": "MeshService", "name": s, **({"port": p} if p else {})}
                for s, p in draw(
                    st.lists(st.tuples(st.sampled_from(SERVICES), st.sampled_from([None, 8080])), max_size=2)
                )
            ]
            tp["reachableBackends"] = {"refs": refs}
        networking["transparentProxying"] = tp
    else:
        outbounds = []
        for n, service in enumerate(draw(st.lists(st.sampled_from(SERVICES), max_size=2))):
            if draw(st.booleans()):
                outbounds.append(
                    {"port": 20000 + n, "backendRef": {"kind": "MeshService", "name": service, "port": 8080}}
                )
            else:
                outbounds.append({"port": 20000 + n, "tags": {"kuma.io/service": service}})
        networking["outbound"] = outbounds
    return {"type": "Dataplane", "name": f"dp-{index}", "mesh": mesh, "networking": networking}


@st.composite
def world(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for mesh in draw(st.lists(st.sampled_from(["red", "blue"]), min_size=1, max_size=2, unique=True)):
        routing = {"localityAwareLoadBalancing": draw(st.booleans())}
        docs.append(
            {"type": "Mesh", "name": mesh, "meshServices": {"mode": draw(st.sampled_from(MODES))}, "routing": routing}
        )
        docs += [draw(dataplane(mesh, i)) for i in range(draw(st.integers(1, 4)))]
    return docs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world())
def test_random_meshes_translate_consistently(docs: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "input.yaml").write_text(yaml.safe_dump_all(docs))
        result = load_catalog([folder])
    assert result.catalog is not None, [str(p) for p in result.errors]
    catalog = result.catalog
    snaps = snapshots_for(catalog)  # raises SnapshotError on any inconsistency
    assert set(snaps) == set(catalog.node_ids())
    again = snapshots_for(catalog)
    for node, snap in snaps.items():
        assert again[node].versions == snap.versions
        mesh = node.split(".", 1)[0]
        view = catalog.meshes[mesh]
        dp = catalog.dataplane(node)
        assert dp is not None
        services = {i.service for d in view.dataplanes for i in d.networking.inbound}
        services |= {o.tags["kuma.io/service"] for o in dp.networking.outbound if o.tags}  # may have no endpoints
        for name in snap.get(CLUSTER):
            if name.startswith(("localhost:", "outbound:passthrough:")):  # app clusters, the transparent catch-all
                continue
            if "_msvc_" in name or "_mzsvc_" in name:
                assert name.startswith(f"{mesh}_"), (node, name)  # never another mesh's destination
            else:
                assert name.split("-")[0] in services or name in services, (node, name)
                if view.mesh.spec.mode.value == "Exclusive":
                    assert not dp.transparent, (node, name)  # Exclusive: legacy only via explicit outbounds
        if not dp.transparent:
            outbound = [n for n in snap.get(LISTENER) if n.startswith("outbound:")]
            assert len(outbound) <= len(dp.networking.outbound)


@given(st.one_of(st.ip_addresses().map(str), st.lists(st.sampled_from("0123456789.:a٤ "), max_size=16).map("".join)))
@example("01.2.3.4")
@example("256.1.1.1")
@example("1.2.3.٤")
@example("0.0.0.0")
@example("1.2.3")
def test_canonical_address_agrees_with_ipaddress(address: str) -> None:
    """The IPv4 fast path of ``canonical_address`` returns what parsing with ``ipaddress`` returns."""
    try:
        ip = ipaddress.ip_address(address)
        expected = (str(ip), True, ip.is_unspecified)
    except ValueError:
        expected = (address, False, False)
    assert canonical_address.__wrapped__(address) == expected
