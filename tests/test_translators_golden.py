"""Golden files: ``tests/golden/<case>/input/*.yaml`` → ``expected/<node>.json``, one file per proxy.

Regenerate with ``pytest tests/test_translators_golden.py --update-golden`` (or ``make golden``)
and review the diff. An optional ``zone`` file in a case sets the control plane's zone.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from meshxds.resources import LoadResult, load_catalog
from meshxds.snapshots.builder import snapshots_for
from meshxds.snapshots.dump import to_json
from meshxds.snapshots.snapshot import Snapshot
from meshxds.xds.nodemeta import DNS_PORT
from tests.support.envoy import envoy_binary
from tests.support.snapshots import static_bootstrap

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.iterdir() if (p / "input").is_dir())


def load_case(case: Path) -> LoadResult:
    """The case's input, with its optional ``zone`` file and ``node-metadata.yaml`` (what each sidecar
    reports in its Envoy node metadata: ``dataplane.dns.port``)."""
    zone_file = case / "zone"
    zone = zone_file.read_text().strip() if zone_file.exists() else "default"
    metadata_file = case / "node-metadata.yaml"
    metadata = yaml.safe_load(metadata_file.read_text()) if metadata_file.exists() else {}
    dns_ports = {node: int(values[DNS_PORT]) for node, values in metadata.items() if DNS_PORT in values}
    return load_catalog([case / "input"], zone=zone, dns_ports=dns_ports)


def dump_case(case: Path) -> dict[str, str]:
    result = load_case(case)
    assert result.catalog is not None, "\n".join(str(p) for p in result.errors)
    return {f"{node}.json": to_json(snap) for node, snap in snapshots_for(result.catalog).items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Path, update_golden: bool) -> None:
    actual = dump_case(case)
    expected_dir = case / "expected"
    if update_golden:
        expected_dir.mkdir(exist_ok=True)
        for stale in expected_dir.glob("*.json"):
            if stale.name not in actual:
                stale.unlink()
        for name, text in actual.items():
            (expected_dir / name).write_text(text)
    expected = {p.name: p.read_text() for p in sorted(expected_dir.glob("*.json"))}
    assert sorted(actual) == sorted(expected), "the set of proxies changed"
    for name in sorted(actual):
        assert actual[name] == expected[name], f"{case.name}/expected/{name} differs (run with --update-golden)"


def test_dump_is_byte_identical_across_runs() -> None:
    case = GOLDEN / "modes-everywhere"
    assert dump_case(case) == dump_case(case)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_envoy_accepts_every_golden_snapshot(case: Path, tmp_path: Path) -> None:
    """``envoy --mode validate`` on each proxy's snapshot as a static bootstrap: what Envoy would NACK fails here."""
    result = load_case(case)
    assert result.catalog is not None

    def validate(item: tuple[str, Snapshot]) -> tuple[str, int, str]:
        node, snap = item
        path = tmp_path / f"{node}.yaml"
        path.write_text(yaml.safe_dump(static_bootstrap(snap)))
        cmd = [envoy_binary(), "--mode", "validate", "-c", str(path), "-l", "error"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return node, done.returncode, (done.stdout + done.stderr)[-2000:]

    with ThreadPoolExecutor(max_workers=4) as pool:
        for node, code, output in pool.map(validate, snapshots_for(result.catalog).items()):
            assert code == 0, f"{case.name}/{node}: {output}"
