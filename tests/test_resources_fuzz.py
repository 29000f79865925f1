"""Property: whatever the bytes, the loader returns a clean list of one-line problems, never raises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshxds.resources import LoadResult, load_catalog
from tests.resources.util import EXAMPLE

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = [
    "type", "name", "mesh", "labels", "spec", "status", "networking", "inbound", "outbound", "port", "ports",
    "targetPort", "selector", "dataplaneTags", "address", "tags", "kuma.io/service", "apiVersion", "kind",
    "metadata", "meshServices", "mode", "transparentProxying", "vips", "appProtocol", "template",
]  # fmt: skip
TYPES = ["Mesh", "Dataplane", "MeshService", "MeshMultiZoneService", "HostnameGenerator", "ZoneIngress", "Service"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from([*TYPES, "kuma.io/v1alpha1", "v1", "Everywhere", "{{ .Name }}", "241.0.0.1", "None"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=25,
)


def example_docs() -> list[Any]:
    return [doc for path in sorted(EXAMPLE.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


EXAMPLE_DOCS = example_docs()


@st.composite
def mutated_example(draw: st.DrawFn) -> list[Any]:
    """The example's documents with a few random edits: set, delete or retype a value at a random path."""
    docs: list[Any] = yaml.safe_load(yaml.safe_dump(EXAMPLE_DOCS))
    for _ in range(draw(st.integers(1, 4))):
        node: Any = docs
        for _ in range(draw(st.integers(1, 6))):
            children = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
            if not children:
                break
            key = draw(st.sampled_from(children))
            child = node[key]
            if not isinstance(child, dict | list) or draw(st.booleans()):
                action = draw(st.sampled_from(["set", "delete", "rename"]))
                if action == "set":
                    node[key] = draw(values)
                elif action == "delete":
                    del node[key]
                elif isinstance(node, dict):
                    node[draw(st.sampled_from(KEYS))] = node.pop(key)
                break
            node = child
    return docs


def check(result: LoadResult) -> None:
    assert isinstance(result, LoadResult)
    assert (result.catalog is None) == bool(result.errors)
    for problem in result.problems:
        line = str(problem)
        assert "\n" not in line and "Traceback" not in line and problem.message


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(workdir: Path, data: bytes) -> None:
    path = workdir / "bytes.yaml"
    path.write_bytes(data)
    check(load_catalog([path]))


@SETTINGS
@given(docs=st.lists(values, max_size=4))
def test_random_documents(workdir: Path, docs: list[Any]) -> None:
    path = workdir / "docs.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    check(load_catalog([path]))


@SETTINGS
@given(docs=mutated_example(), cut=st.integers(0, 4000))
def test_mutated_example(workdir: Path, docs: list[Any], cut: int) -> None:
    path = workdir / "mutated.yaml"
    text = yaml.safe_dump_all(docs)
    path.write_text(text)
    check(load_catalog([path]))
    path.write_text(text[:cut])  # truncated mid-document
    check(load_catalog([path]))


def test_unmutated_example_round_trips_cleanly(workdir: Path) -> None:
    path = workdir / "example.yaml"
    path.write_text(yaml.safe_dump_all(EXAMPLE_DOCS))
    result = load_catalog([path])
    assert result.catalog is not None and not result.errors
