"""``meshxds explain``: present and absent destinations of every kind, each ending in the decisive reason.

The reasons are the translator's own checks (``MeshOutbounds.legacy_skip``/``resource_skip``), which follow
Kuma v2.14.3 ``pkg/xds/sync/dataplane_proxy_builder.go`` ``resolveVIPOutbounds`` and ``asOutbounds``, and
``pkg/xds/context/mesh_context_builder.go`` (no legacy VIP outbounds in Exclusive).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshxds.cli.main import main
from meshxds.migrate.explain import explain
from meshxds.migrate.inputs import InputError, load
from meshxds.translators.outbounds import Skip

CASE = Path(__file__).parent / "golden-migrate" / "modes" / "input"
EXTRA = """
# A second backend whose inbound is not ready.
type: Dataplane
name: backend-2
mesh: default
networking:
  address: 10.0.1.2
  inbound:
    - port: 8080
      state: NotReady
      tags:
        kuma.io/service: backend
        kuma.io/protocol: http
"""


def mesh_in(tmp_path: Path, mode: str) -> Path:
    folder = tmp_path / mode
    shutil.copytree(CASE, folder)
    mesh = folder / "00-mesh.yaml"
    mesh.write_text(mesh.read_text().replace("mode: Disabled", f"mode: {mode}"))
    (folder / "40-extra.yaml").write_text(EXTRA)
    return folder


def ask(folder: Path, node: str, query: str) -> tuple[bool, list[str]]:
    answer = explain(load([folder], zone="east"), node, query)
    return answer.present, list(answer.lines)


@pytest.fixture(scope="module")
def exclusive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mesh_in(tmp_path_factory.mktemp("explain"), "Exclusive")


def test_meshservice_present_with_selector_endpoints_and_health(exclusive: Path) -> None:
    present, lines = ask(exclusive, "default.web", "MeshService backend:8080")
    assert present
    text = "\n".join(lines)
    assert (
        'local MeshService; selector {"dataplaneTags": {"kuma.io/service": "backend"}} '
        "matches 2 Dataplane(s): backend-1, backend-2" in text
    )
    assert "1 endpoint(s): 10.0.1.1:8080" in text
    assert "left out as not healthy: backend-2:8080 (NotReady)" in text
    assert "=> present: cluster default_backend__east_msvc_8080, outbound 241.0.0." in text
    # The synced west backend is the same display name: explained too, with its zone.
    assert "MeshService backend:8080 (zone west):" in lines


def test_every_kind_of_name_finds_the_same_destination(exclusive: Path) -> None:
    inp = load([exclusive], zone="east")
    ms = next(m for m in inp.catalog.meshes["default"].mesh_services if m.name == "backend")
    vip = f"{ms.status.vips[0].ip}:8080"
    for query in ("default_backend__east_msvc_8080", "kri_msvc_default_east__backend_8080", vip,
                  "backend.svc.mesh.local"):  # fmt: skip
        answer = explain(inp, "default.web", query)
        assert answer.present, query
        assert answer.lines[-1].startswith("  => present: cluster default_backend__east_msvc_8080"), query


def test_legacy_service_absent_in_exclusive(exclusive: Path) -> None:
    present, lines = ask(exclusive, "default.web", "kuma.io/service=backend")
    assert not present
    assert (
        lines[-1] == "  => absent: mode Exclusive: Kuma builds no kuma.io/service VIP outbounds (use its MeshService)"
    )


def test_explicit_outbounds_of_a_proxy_without_transparent_proxy(exclusive: Path) -> None:
    present, lines = ask(exclusive, "default.legacy-client", "kuma.io/service=backend")
    assert present and lines[-1] == "  => present: cluster backend, outbound 127.0.0.1:20001"  # asOutbounds keeps tags
    present, lines = ask(exclusive, "default.legacy-client", "db:5432")
    assert present and "  => present: cluster default_db__east_msvc_5432, outbound 127.0.0.1:20002" in lines
    present, lines = ask(exclusive, "default.legacy-client", "MeshService web:3000")
    assert not present
    assert lines[-1] == f"  => absent: {Skip.NO_TRANSPARENT_PROXY.value}, and none of them leads here"


def test_reachable_settings_decide(exclusive: Path) -> None:
    present, lines = ask(exclusive, "default.web-rs", "MeshService backend:8080")
    assert not present and lines[-1] == f"  => absent: {Skip.REACHABLE_SERVICES_ONLY.value}"
    present, lines = ask(exclusive, "default.web-rb", "MeshService db")
    assert not present and lines[-1] == f"  => absent: {Skip.NOT_SELECTED.value}"
    assert "  none of the 2 reachableBackends refs selects it" in lines
    present, lines = ask(exclusive, "default.web-rb", "MeshMultiZoneService backend:8080")
    assert present and "  reachableBackends refs[1] select it" in lines


def test_mode_reachable_backends_and_reachable_services(tmp_path: Path) -> None:
    folder = mesh_in(tmp_path, "ReachableBackends")
    present, lines = ask(folder, "default.web", "MeshService web")
    assert not present and lines[-1] == f"  => absent: {Skip.NO_REACHABLE_BACKENDS.value}"
    present, lines = ask(folder, "default.web-rs", "kuma.io/service=db")
    assert not present and lines[-1] == f"  => absent: {Skip.NOT_IN_REACHABLE_SERVICES.value}"
    assert "  not in reachableServices" in lines
    for query in ("backend.mesh", "240.0.0.1", "kuma.io/service=backend", "backend"):
        present, lines = ask(folder, "default.web-rs", query)
        assert present and lines[-1] == "  => present: cluster backend, outbound 240.0.0.1:80", query


def test_unknown_names(exclusive: Path) -> None:
    present, lines = ask(exclusive, "default.web", "nothing-here")
    assert not present and lines[-1].startswith("=> absent: nothing in mesh default is named 'nothing-here'")


def test_cli_exit_codes(exclusive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(exclusive), "--zone", "east", "--node", "default.web", "MeshService web:3000"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("  => present:")
    assert main(["explain", str(exclusive), "--zone", "east", "--node", "default.web", "kuma.io/service=web"]) == 1
    assert main(["explain", str(exclusive), "--zone", "east", "--node", "default.ghost", "web"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown node 'default.ghost'; known nodes: default.backend-1")
    with pytest.raises(InputError):
        explain(load([exclusive], zone="east"), "nomesh", "web")
