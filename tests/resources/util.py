"""Helpers for the resources tests: write YAML to real files and load them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from meshxds.resources import LoadResult, load_catalog
from meshxds.resources.catalog import Catalog
from meshxds.resources.model import MeshService

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "universal-demo"

MESH_EVERYWHERE = """
type: Mesh
name: default
meshServices:
  mode: Everywhere
"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp: Path, text: str, previous: Catalog | None = None, connected: frozenset[str] = frozenset()) -> LoadResult:
    """Load one file ``in.yaml`` holding ``text``."""
    write(tmp, "in.yaml", text)
    return load_catalog([tmp / "in.yaml"], previous=previous, connected=connected)


def errors(tmp: Path, text: str) -> list[str]:
    """The error lines, with the file name shortened to ``in.yaml``."""
    result = load(tmp, text)
    assert result.catalog is None, "expected errors"
    return [str(p).replace(str(tmp) + "/", "") for p in result.errors]


def ok(tmp: Path, text: str, previous: Catalog | None = None, connected: frozenset[str] = frozenset()) -> Catalog:
    result = load(tmp, text, previous, connected)
    assert result.catalog is not None, [str(p) for p in result.errors]
    return result.catalog


def services(catalog: Catalog, mesh: str = "default") -> dict[str, MeshService]:
    return {ms.name: ms for ms in catalog.meshes[mesh].mesh_services}


def dataplane(name: str, address: str, *inbounds: str, mesh: str = "default") -> str:
    """A universal Dataplane document; each inbound is a flow-style YAML mapping."""
    lines = "\n".join(f"    - {i}" for i in inbounds)
    return f"type: Dataplane\nname: {name}\nmesh: {mesh}\nnetworking:\n  address: {address}\n  inbound:\n{lines}\n"


def meshservice(name: str, service: str, port: int = 80, target: int | str = 80, extra: str = "") -> str:
    """A universal MeshService document selecting ``kuma.io/service: <service>``."""
    return (
        f"type: MeshService\nname: {name}\n{extra}"
        f"spec: {{selector: {{dataplaneTags: {{kuma.io/service: '{service}'}}}}, "
        f"ports: [{{port: {port}, targetPort: {target}}}]}}\n"
    )
