"""``meshxds apply/get/delete/inspect/token`` against a running store-backed control plane, and the folder
mode's ``--state-dir`` (a restart keeps VIPs).

kumactl's UX from Kuma v2.14.3 app/kumactl/cmd/apply/apply.go (``resource type=... Created|Updated``,
``failed server side``), cmd/get (``MESH NAME AGE`` table), cmd/delete/delete.go (``deleted X "n"``,
``there is no X with name "n"``).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshxds.api.app import start_api, start_folder_api
from meshxds.cli.main import main
from meshxds.control.background import Background
from meshxds.control.folder_service import FolderService, FolderView
from meshxds.control.metrics import Metrics
from meshxds.control.store_service import StoreService
from meshxds.resources.loader import load_documents
from meshxds.store.folder import FileCache, FolderStore
from meshxds.store.postgres import PostgresStore
from tests.support.example import private_copy
from tests.support.net import free_port
from tests.support.poll import wait_until

pytestmark = pytest.mark.real  # the tests here use the session's real PostgreSQL server

REDIS = """\
type: MeshService
name: redis
mesh: default
spec:
  selector: {dataplaneTags: {app: redis}}
  ports: [{port: 6379, targetPort: 6379}]
---
apiVersion: kuma.io/v1alpha1
kind: MeshService
metadata: {name: cache, namespace: apps, labels: {kuma.io/mesh: default}}
spec:
  selector: {dataplaneTags: {app: cache}}
  ports: [{port: 11211}]
"""


@pytest.fixture
def api(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    bg = Background("store-cli")

    async def up() -> tuple[StoreService, object, int]:
        service = StoreService(await PostgresStore.open(postgres_url))
        await service.start("127.0.0.1", 0)
        runner, port = await start_api(service, "127.0.0.1", 0)
        return service, runner, port

    service, runner, port = bg.run(up())
    token = bg.run(service.store.get_state("admin-token"))
    assert token is not None
    monkeypatch.setenv("MESHXDS_API", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MESHXDS_TOKEN", token["token"])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        bg.run(runner.cleanup())  # type: ignore[attr-defined]
        bg.run(service.stop())
        bg.close()


def test_apply_get_delete_like_kumactl(
    api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "redis.yaml"
    f.write_text(REDIS)
    assert main(["apply", "-f", str(f)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        'resource type="MeshService" mesh="default" name="redis" Created',
        'resource type="MeshService" mesh="default" name="cache.apps" Created',
    ]
    monkeypatch.setattr(sys, "stdin", io.StringIO(REDIS))
    token_file = tmp_path / "token"
    token = os.environ["MESHXDS_TOKEN"]
    token_file.write_text(token + "\n")
    monkeypatch.setenv("MESHXDS_TOKEN", "wrong")  # --token-file wins over the environment
    assert main(["apply", "-f", "-", "--token-file", str(token_file)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("Updated")
    monkeypatch.setenv("MESHXDS_TOKEN", token)
    assert main(["get", "meshservices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MESH", "NAME", "AGE"]
    assert [line.split()[:2] for line in lines[1:]] == [["default", "cache.apps"], ["default", "redis"]]

    def shown() -> dict[str, object]:
        assert main(["get", "meshservice", "redis", "-o", "json"]) == 0
        body: dict[str, object] = json.loads(capsys.readouterr().out)
        return body

    # Status comes from the control plane's Catalog, rebuilt just after the write: poll for the VIP.
    body = wait_until(lambda: (b := shown()).get("status") and b, what="redis with its status")
    assert body["name"] == "redis" and body["status"]["vips"]  # type: ignore[index]
    assert main(["get", "meshes", "--size", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["NAME", "AGE"]
    assert main(["delete", "meshservice", "redis"]) == 0
    assert capsys.readouterr().out == 'deleted MeshService "redis"\n'
    assert main(["delete", "meshservice", "redis"]) == 1
    assert capsys.readouterr().err == 'error: there is no MeshService with name "redis"\n'


def test_apply_reports_bad_documents_locally_and_server_errors(
    api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: MeshService\nname: x\nspec:\n  ports: [{port: 80, appProtocol: 7}]\n")
    assert main(["apply", "-f", str(bad)]) == 1  # a document that does not parse is refused before any call
    err = capsys.readouterr().err
    assert f"{bad}: document 1: MeshService default/x: spec.ports[0].appProtocol: must be a string" in err
    assert err.endswith("error: failed to validate some resources\n")
    two = "selector: {dataplaneTags: {app: x}, dataplaneRef: {name: x-1}}"
    bad.write_text(f"type: MeshService\nname: x\nspec:\n  {two}\n  ports: [{{port: 80}}]\n")
    assert main(["apply", "-f", str(bad)]) == 1  # Kuma's resource rules are checked before any call, too
    err = capsys.readouterr().err
    assert f"{bad}: document 1: MeshService default/x: spec.selector: must specify only one of" in err
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(REDIS.split("---")[0].replace("mesh: default", "mesh: nope"))
    assert main(["apply", "-f", str(elsewhere)]) == 1
    err = capsys.readouterr().err
    assert 'resource type="MeshService" mesh="nope" name="redis": failed server side:' in err
    assert "mesh: mesh of name nope is not found" in err
    monkeypatch.setenv("MESHXDS_TOKEN", "wrong")
    f = tmp_path / "redis.yaml"
    f.write_text(REDIS)
    assert main(["apply", "-f", str(f)]) == 1
    assert "HTTP 401" in capsys.readouterr().err


def test_inspect_dataplane_config(api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dp = tmp_path / "dp.yaml"
    dp.write_text(
        "type: Dataplane\nname: web-1\nmesh: default\nnetworking:\n  address: 127.0.0.1\n"
        "  inbound: [{port: 10080, tags: {kuma.io/service: web}}]\n"
    )
    assert main(["apply", "-f", str(dp)]) == 0
    capsys.readouterr()
    # The rebuild after a write is asynchronous (as in Kuma): poll until the proxy's config exists.
    wait_until(lambda: main(["inspect", "dataplane", "web-1", "--type", "config"]) == 0, what="web-1's config")
    body = json.loads(capsys.readouterr().out)
    assert {"clusters", "listeners"} <= set(body["xds"])
    assert main(["inspect", "dataplane", "nope"]) == 1
    capsys.readouterr()
    svc = tmp_path / "svc.yaml"
    svc.write_text(
        "type: MeshService\nname: web\nmesh: default\n"
        "spec: {selector: {dataplaneTags: {kuma.io/service: web}}, ports: [{port: 80, targetPort: 10080}]}\n"
    )
    assert main(["apply", "-f", str(svc)]) == 0

    def selected() -> list[str]:
        with urllib.request.urlopen(f"{api}/meshes/default/meshservices/web/_resources/dataplanes") as resp:
            return [item["name"] for item in json.loads(resp.read())["items"]]

    # inspect_mesh_service.go: the Dataplanes the MeshService's selector matches.
    assert wait_until(selected, what="web's dataplanes") == ["web-1"]


def test_folder_state_dir_keeps_vips_across_restarts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mesh"
    private_copy(folder)
    state = tmp_path / "state"

    def vips() -> dict[str, str]:
        async def go() -> dict[str, str]:
            service = FolderService(FolderStore([folder], state_dir=state), "default", 0.2)
            await service.start("127.0.0.1", free_port())
            await service.stop()
            assert service.catalog is not None
            view = service.catalog.meshes["default"]
            return {ms.name: ms.status.vips[0].ip for ms in view.mesh_services}

        return asyncio.run(go())

    first = vips()
    assert "web" in first
    cache = FileCache()
    cache.load([folder])
    reads = cache.reads
    (folder / "40-redis.yaml").write_text((folder / "40-redis.yaml").read_text() + "\n# edited\n")
    docs = cache.load([folder])
    assert cache.reads == reads + 1  # one edited file of five is parsed again
    assert len(docs.resources) == len(load_documents([folder]).resources)
    (folder / "10-web.yaml").unlink()  # the first-allocated service goes while the server is down
    second = vips()
    assert second == {k: v for k, v in first.items() if k != "web"}  # nothing moved into the freed VIP
    assert main(["token", "--admin", "--state-dir", str(state)]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) > 20
    assert (state / "catalog.json").exists()


RULES_MESH = """\
type: Mesh
name: default
meshServices: {mode: Exclusive}
skipCreatingInitialPolicies: ["*"]
---
type: Dataplane
name: client-1
mesh: default
networking:
  address: 127.0.0.1
  inbound: [{port: 13000, tags: {kuma.io/service: client, kuma.io/protocol: http}}]
  transparentProxying: {redirectPortInbound: 15006, redirectPortOutbound: 15001}
---
type: Dataplane
name: api-1
mesh: default
networking:
  address: 127.0.0.2
  inbound: [{port: 18080, name: http, tags: {kuma.io/service: api, kuma.io/protocol: http}}]
---
type: MeshTimeout
name: mt-1
mesh: default
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: MeshService, name: api}
      default: {connectionTimeout: 11s, http: {requestTimeout: 12s}}
"""


def cli_rules(folder: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    """What ``meshxds rules`` prints for client-1, without addresses (VIPs are allocated per store)."""
    assert main(["rules", str(folder), "--node", "default.client-1"]) == 0
    view = yaml.safe_load(capsys.readouterr().out)
    return [{k: v for k, v in ob.items() if k != "address"} for ob in view["outbounds"]]


def check_kuma_shape(body: dict[str, object]) -> None:
    """Kuma v2.14.3 pkg/api-server/testdata/resources/inspect/dataplanes/_rules/resource_rule_meshtimeout.golden.json:
    ``resource``, ``httpMatches``, and per policy type the ``toResourceRules`` with ``conf`` and ``origin``."""
    resource: dict[str, Any] = body["resource"]  # type: ignore[assignment]
    assert (resource["type"], resource["mesh"], resource["name"]) == ("Dataplane", "default", "client-1")
    assert resource["labels"]["kuma.io/mesh"] == "default"  # the computed labels, as Kuma stores them
    assert body["httpMatches"] == []
    timeout = next(r for r in body["rules"] if r["type"] == "MeshTimeout")  # type: ignore[attr-defined]
    item = next(i for i in timeout["toResourceRules"] if i["kri"] == "kri_msvc_default_default__api_http")
    assert item["conf"] == [{"connectionTimeout": "11s", "http": {"requestTimeout": "12s"}}]
    assert item["origin"] == [{"resourceMeta": {"type": "MeshTimeout", "mesh": "default", "name": "mt-1"}}]
    assert item["origins"]["http.requestTimeout"] == "MeshTimeout default/mt-1"


def api_outbounds(body: dict[str, object]) -> list[dict[str, object]]:
    return [{k: v for k, v in ob.items() if k != "address"} for ob in body["outbounds"]]  # type: ignore[attr-defined]


def test_inspect_dataplane_rules_is_the_rules_command(
    api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kuma's ``_rules`` (inspect_endpoints.go) in store mode shows what ``meshxds rules`` computes."""
    f = tmp_path / "mesh.yaml"
    f.write_text(RULES_MESH)
    assert main(["apply", "-f", str(f)]) == 0
    capsys.readouterr()

    def shown() -> dict[str, object]:
        if main(["inspect", "dataplane", "client-1", "--mesh", "default", "--type", "rules"]) != 0:
            capsys.readouterr()
            return {}
        body: dict[str, object] = json.loads(capsys.readouterr().out)
        kinds = [r["type"] for r in body["rules"]]  # type: ignore[attr-defined]
        return body if "MeshTimeout" in kinds else {}

    body = wait_until(shown, what="client-1's rules with mt-1")
    check_kuma_shape(body)
    expected = cli_rules(tmp_path, capsys)
    assert any("MeshTimeout" in ob for ob in expected)
    assert api_outbounds(body) == expected
    assert main(["inspect", "dataplane", "nope", "--type", "rules"]) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_folder_api_rules_is_the_rules_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mesh"
    folder.mkdir()
    (folder / "mesh.yaml").write_text(RULES_MESH)
    bg = Background("folder-rules")

    async def up() -> tuple[FolderService, object, int]:
        store = FolderStore([folder], state_dir=tmp_path / "state")
        service = FolderService(store, "default", 0.2)
        await service.start("127.0.0.1", free_port())
        runner, port = await start_folder_api(store, FolderView(service), Metrics(service.cache), "127.0.0.1", 0)
        return service, runner, port

    service, runner, port = bg.run(up())
    try:

        def rules() -> dict[str, object]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/meshes/default/dataplanes/client-1/_rules") as r:
                body: dict[str, object] = json.loads(r.read())
                return body

        body = wait_until(rules, what="client-1's rules")
        check_kuma_shape(body)
        assert api_outbounds(body) == cli_rules(folder, capsys)
    finally:
        bg.run(runner.cleanup())  # type: ignore[attr-defined]
        bg.run(service.stop())
        bg.close()
