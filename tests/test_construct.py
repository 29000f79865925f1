"""Messages built by ``codec.construct``'s constructors are the messages pydantic's validated constructor builds.

Every message the translators emit (every resource of every golden and fidelity case, a mesh with mTLS
in STRICT and PERMISSIVE mode with RBAC rules, HDS specifiers, and every message packed into a
typed_config on the way) is rebuilt bottom-up with the validated constructor from its own field values;
both must hold the same values of the very same types (no coercion the translators would lean on), in the
same ``__dict__`` layout, and encode to the same bytes, ours and betterproto2's.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import betterproto2
import pytest

from bench.mesh import MeshSpec, documents, write
from bench.mesh import load as load_mesh
from meshxds.codec import construct
from meshxds.codec.encode import encode_message
from meshxds.resources import load_catalog
from meshxds.resources.catalog import Catalog
from meshxds.resources.model import Dataplane
from meshxds.snapshots.builder import snapshots_for
from meshxds.translators import protos
from meshxds.translators.health import health_check_specifier
from tests.test_translators_golden import CASES, load_case

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from envoy_data_plane.envoy.config.cluster.v3 import Cluster

FIDELITY = Path(__file__).parent / "fidelity"
TRANSLATOR_MODULES = [m for name, m in sys.modules.items() if name.startswith("meshxds.translators.")]


def same(fast: Any, validated: Any, where: str) -> None:
    """Equal values of identical types all the way down (``==`` alone would let 1 == True == 1.0 pass)."""
    assert type(fast) is type(validated), f"{where}: {type(fast).__name__} vs {type(validated).__name__}"
    if isinstance(fast, betterproto2.Message):
        assert list(fast.__dict__) == list(validated.__dict__), f"{where}: field layout"
        for name in fast.__dict__:
            same(fast.__dict__[name], validated.__dict__[name], f"{where}.{name}")
    elif isinstance(fast, list):
        assert len(fast) == len(validated), where
        for n, (a, b) in enumerate(zip(fast, validated, strict=True)):
            same(a, b, f"{where}[{n}]")
    elif isinstance(fast, dict):
        assert list(fast) == list(validated), where
        for key in fast:
            same(fast[key], validated[key], f"{where}[{key!r}]")
    else:
        assert fast == validated, where


def revalidated(value: Any) -> Any:
    """``value`` rebuilt with the validated constructors, innermost messages first."""
    if isinstance(value, betterproto2.Message):
        fields = {f.name: revalidated(getattr(value, f.name)) for f in dataclasses.fields(value)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated fields warn when set
            return type(value)(**fields)
    if isinstance(value, list):
        return [revalidated(v) for v in value]
    if isinstance(value, dict):
        return {k: revalidated(v) for k, v in value.items()}
    return value


def messages_in(message: Any) -> Iterator[Any]:
    """``message`` and every message nested in it."""
    stack = [message]
    while stack:
        msg = stack.pop()
        yield msg
        for value in msg.__dict__.values():
            items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else (value,)
            stack.extend(v for v in items if isinstance(v, betterproto2.Message))


def mtls_mesh(tmp: Path, mode: str) -> Catalog:
    """A small mesh with builtin mTLS: HTTP and TCP inbounds, an allow rule and a shadow-deny rule."""
    docs = documents(MeshSpec(services=4, dataplanes_per_service=2, mtls=True))
    docs[0]["mtls"]["backends"][0]["mode"] = mode
    rules = [
        {"targetRef": {"kind": "MeshService", "name": "svc-00001"}, "default": {"action": "AllowWithShadowDeny"}},
        {"targetRef": {"kind": "MeshSubset", "tags": {"version": "v1", "team": "a"}}, "default": {"action": "Allow"}},
    ]
    docs[1]["spec"]["from"] += rules
    return load_mesh(write(MeshSpec(), tmp, docs))


def catalogs(tmp: Path) -> Iterator[Catalog]:
    for case in CASES:
        result = load_case(case)
        assert result.catalog is not None
        yield result.catalog
    for case in sorted(p for p in FIDELITY.iterdir() if (p / "input.yaml").exists()):
        result = load_catalog([case / "input.yaml"])
        if result.catalog is not None:
            yield result.catalog
    for mode in ("STRICT", "PERMISSIVE"):
        folder = tmp / mode
        folder.mkdir()
        yield mtls_mesh(folder, mode)


def kuma_hds_dataplane() -> Dataplane:
    networking = {
        "address": "10.20.0.1",
        "inbound": [
            {"port": 9000, "servicePort": 80, "serviceProbe": {"tcp": {}}, "tags": {"kuma.io/service": "b"}},
            {"port": 9001, "servicePort": 81, "tags": {"kuma.io/service": "c"}},
        ],
        "transparentProxying": {"redirectPortInbound": 15006, "redirectPortOutbound": 15001},
    }
    return Dataplane.model_validate({"name": "dp-1", "mesh": "m", "spec": {"networking": networking}})


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """Every distinct message the translators emit, packed ones included (caches cleared so nothing is skipped)."""
    for module in TRANSLATOR_MODULES:
        for obj in vars(module).values():
            if isinstance(getattr(obj, "cache_clear", None), Callable):  # type: ignore[arg-type]
                obj.cache_clear()
    packed: list[Any] = []
    original = protos.pack

    def recording_pack(message: Any) -> Any:
        packed.append(message)
        return original(message)

    mp = pytest.MonkeyPatch()
    mp.setattr(protos, "pack", recording_pack)
    for module in TRANSLATOR_MODULES:
        if getattr(module, "pack", None) is original:
            mp.setattr(module, "pack", recording_pack)
    try:
        roots: list[Any] = []
        for catalog in catalogs(tmp_path_factory.mktemp("meshes")):
            for snapshot in snapshots_for(catalog).values():
                roots += [entry.message for entries in snapshot.resources.values() for entry in entries.values()]
        roots.append(health_check_specifier(kuma_hds_dataplane()))
        roots += packed
    finally:
        mp.undo()
    seen: dict[int, Any] = {}
    for root in roots:
        for msg in messages_in(root):
            seen.setdefault(id(msg), msg)
    return list(seen.values())


def test_every_emitted_message_equals_its_validated_twin(emitted: list[Any]) -> None:
    by_class: dict[type, int] = {}
    for msg in emitted:
        twin = revalidated(msg)
        same(msg, twin, type(msg).__name__)
        assert msg == twin
        assert encode_message(msg) == encode_message(twin)
        n = by_class[type(msg)] = by_class.get(type(msg), 0) + 1
        if n <= 3:  # betterproto2's own encoder (slow): a few of each class
            assert bytes(msg) == bytes(twin), type(msg).__name__


def test_every_class_with_a_fast_constructor_is_covered(emitted: list[Any]) -> None:
    """The classes the constructors built here are the classes checked above (nothing slips through)."""
    built = {type(m) for m in emitted}
    fast = {cls for cls in construct._CONSTRUCTORS if cls in built}
    assert len(fast) >= 60, sorted(c.__name__ for c in fast)
    assert built - set(construct._CONSTRUCTORS) == set(), "messages built by a validated constructor"


FRESH_PROCESS = """
import warnings
from meshxds.codec.encode import encode_message
from meshxds.translators import protos as pb
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from envoy_data_plane.envoy.config.cluster.v3 import Cluster
assert not Cluster.__pydantic_complete__, "the class was completed before its first use"
msg = pb.Cluster(name="c", type=pb.ClusterDiscoveryType.EDS, load_assignment=pb.ClusterLoadAssignment(cluster_name="c"))
print(bytes(msg).hex(), encode_message(msg).hex(), msg.to_json(), repr(msg))
validated = Cluster(name="c", type=pb.ClusterDiscoveryType.EDS, load_assignment=msg.load_assignment)
print(bytes(validated).hex(), encode_message(validated).hex(), validated.to_json(), repr(validated))
"""


def test_betterproto2_methods_work_on_a_fast_built_message_of_a_fresh_class() -> None:
    """``bytes()``/``to_dict()`` validate first with the class's lazily built pydantic schema, which no fast
    constructor builds: the constructor's class completes it then (a fresh process, so no test built it)."""
    run = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    fast, validated = run.stdout.splitlines()
    assert fast == validated
    assert fast.split()[0] == fast.split()[1]  # betterproto2's bytes() == ours


def test_defaults_are_fresh_where_the_dataclass_makes_them_fresh() -> None:
    new_cluster = construct.constructor(Cluster)
    a, b = new_cluster(), new_cluster()
    assert a.transport_socket_matches == [] and a.transport_socket_matches is not b.transport_socket_matches
    assert a.metadata is None and a.name == "" and a.lb_policy == Cluster().lb_policy
    with pytest.raises(TypeError):
        new_cluster(no_such_field=1)
    with pytest.raises(TypeError):
        new_cluster("positional")
