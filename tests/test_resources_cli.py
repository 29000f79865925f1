"""The real ``meshxds`` console script: validate/generate exit codes and output."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.resources.util import EXAMPLE

ROOT = Path(__file__).resolve().parents[1]
MESHXDS = Path(sys.executable).parent / "meshxds"
GOLDEN = ROOT / "tests" / "resources" / "universal-demo.generate.yaml"


def meshxds(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MESHXDS, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_validate_example() -> None:
    run = meshxds("validate", "examples/universal-demo")
    assert run.returncode == 0, run.stderr
    assert (
        run.stdout
        == "mesh default: mode Everywhere, 6 dataplanes, 3 meshservices (2 generated), 0 multizone services, "
        "4 routes and policies\n"
    )
    assert run.stderr.splitlines() == [
        "warning: examples/universal-demo/30-backend-meshservice.yaml: document 1: MeshService default/backend: "
        "kept as written: not generated from the inbounds of Dataplane(s) backend-1, backend-2",
        "warning: examples/universal-demo/40-redis.yaml: document 2: MeshService default/redis: port conflict, "
        "ports must be identical across Dataplane inbounds grouped into a single MeshService: "
        "redis-2 [16380:16380/tcp] differ from the oldest, redis-1 [16379:16379/tcp], whose ports are kept",
    ]


def test_validate_broken_copy_lists_every_error(tmp_path: Path) -> None:
    copy = tmp_path / "demo"
    shutil.copytree(EXAMPLE, copy)
    mesh = copy / "00-mesh.yaml"
    mesh.write_text(mesh.read_text().replace("Everywhere", "Always"))
    ms = copy / "30-backend-meshservice.yaml"
    ms.write_text(ms.read_text().replace("appProtocol: http", "appProtocol: udp").replace("port: 8081", "port: 80"))
    (copy / "99-junk.yml").write_bytes(b"\x00\x01 not: [yaml")
    run = meshxds("validate", copy)
    assert run.returncode == 1
    assert run.stdout == ""
    prefix = str(copy) + "/"
    lines = [line.replace(prefix, "") for line in run.stderr.splitlines()]
    assert lines == [
        "error: 00-mesh.yaml: document 1: Mesh default: meshServices.mode: "
        "must be one of 'Disabled', 'Everywhere', 'ReachableBackends' or 'Exclusive'",
        "error: 30-backend-meshservice.yaml: document 1: MeshService default/backend: spec.ports[1].port: "
        "duplicate port 80 (also spec.ports[0])",
        "error: 99-junk.yml: document 1: invalid YAML: unacceptable character #x0000 at position 0",
        # Kuma 2.14 accepts any appProtocol and builds no cluster for it (makeSplits): a warning, not an error.
        "warning: 30-backend-meshservice.yaml: document 1: MeshService default/backend: spec.ports[0].appProtocol: "
        "'udp' is not one of tcp, http, http2, grpc, kafka: no cluster for this port",
        "warning: 30-backend-meshservice.yaml: document 1: MeshService default/backend: spec.ports[1].appProtocol: "
        "'udp' is not one of tcp, http, http2, grpc, kafka: no cluster for this port",
        "3 error(s)",
    ]


def test_generate_example_matches_golden(update_golden: bool) -> None:
    run = meshxds("generate", "examples/universal-demo")
    assert run.returncode == 0, run.stderr
    if update_golden:
        GOLDEN.write_text(run.stdout)
    assert run.stdout == GOLDEN.read_text()
    docs = list(yaml.safe_load_all(run.stdout))
    assert [(d["type"], d["name"], d["status"]["vips"][0]["ip"]) for d in docs if "status" in d] == [
        ("MeshService", "web", "241.0.0.0"),
        ("MeshService", "backend", "241.0.0.1"),
        ("MeshService", "redis", "241.0.0.2"),
    ]
    # Kuma's default policies for the Mesh (pkg/defaults/mesh/*.go), named <prefix>-<mesh>
    assert [(d["type"], d["name"]) for d in docs if "status" not in d] == [
        ("MeshTimeout", "mesh-gateways-timeout-all-default"),
        ("MeshTimeout", "mesh-timeout-all-default"),
        ("MeshCircuitBreaker", "mesh-circuit-breaker-all-default"),
        ("MeshRetry", "mesh-retry-all-default"),
    ]


def test_generate_output_loads_back_unchanged(tmp_path: Path) -> None:
    """Feeding generate's output back (as hand-written services) keeps ports, VIPs and hostnames."""
    first = meshxds("generate", "examples/universal-demo").stdout
    (tmp_path / "services.yaml").write_text(first)
    for f in EXAMPLE.glob("*.yaml"):
        if "meshservice" not in f.name:
            shutil.copy(f, tmp_path / f.name)
    again = meshxds("generate", tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first


def test_generate_and_validate_fail_on_missing_path() -> None:
    for command in ("generate", "validate"):
        run = meshxds(command, "no/such/dir")
        assert run.returncode == 1
        assert "error: no/such/dir: no such file or directory" in run.stderr
        assert "Traceback" not in run.stderr
