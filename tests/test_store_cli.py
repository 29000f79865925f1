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

import pytest

from meshxds.api.app import start_api
from meshxds.cli.main import main
from meshxds.control.background import Background
from meshxds.control.folder_service import FolderService
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
