"""Transient input states are never served: the service keeps its last good snapshots through an empty,
missing or half-written input, holds a mass removal, keeps VIPs, and its watcher cannot die silently.

Each test is a failure reproduced against the running service (an empty folder loaded as "0 nodes",
a slow rewrite in place that removed half the proxies and moved VIPs, an alias bomb, a dead watcher).
Every test runs twice: with OS change notifications and with the polling fallback (``MESHXDS_WATCH``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from meshxds.control.guard import RemovalGuard
from meshxds.control.service import Service
from meshxds.control.watcher import WATCH_ENV, InputWatcher, fingerprint
from meshxds.resources.catalog import Catalog
from tests.resources.util import MESH_EVERYWHERE, dataplane
from tests.support.adsclient import run, until

POLL = 0.02


@pytest.fixture(autouse=True, params=["notify", "poll"])
def watch_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each scenario with notifications and with polling: both must keep the same guarantees."""
    monkeypatch.setenv(WATCH_ENV, request.param)
    return str(request.param)


def write_mesh(folder: Path, count: int, per_file: int = 1) -> None:
    """``count`` Dataplanes (service ``svc-<i>``), ``per_file`` to a file, plus the Mesh."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "00-mesh.yaml").write_text(MESH_EVERYWHERE)
    for start in range(0, count, per_file):
        docs = [
            dataplane(
                f"dp-{i}", f"10.0.{i // 250}.{i % 250 + 1}", f"{{port: 8080, tags: {{kuma.io/service: svc-{i}}}}}"
            )
            for i in range(start, min(start + per_file, count))
        ]
        (folder / f"10-dp-{start:05d}.yaml").write_text("---\n".join(docs))


def vips(catalog: Catalog | None) -> dict[str, str]:
    assert catalog is not None
    return {ms.name: ms.status.vips[0].ip for view in catalog.meshes.values() for ms in view.mesh_services}


def with_service(
    folder: Path, scenario: Callable[[Service], Awaitable[None]], guard: RemovalGuard | None = None, settle: float = 0.1
) -> None:
    async def body() -> None:
        service = Service([folder], poll_interval=POLL, settle=settle, guard=guard)
        await service.start("127.0.0.1", 0, debug_port=0)
        try:
            await scenario(service)
        finally:
            await service.stop()

    run(body, timeout=60.0)


def test_an_empty_missing_or_unreadable_input_keeps_the_last_good_snapshots(tmp_path: Path) -> None:
    folder = tmp_path / "mesh"
    write_mesh(folder, 4)

    async def scenario(service: Service) -> None:
        assert len(service.cache.nodes()) == 4
        aside = tmp_path / "aside"
        shutil.move(folder, aside)  # the folder is gone
        await until(lambda: service.failed_reloads == 1, 5.0, "the missing folder to be reported")
        folder.mkdir()  # ...and back, empty
        await until(lambda: service.failed_reloads == 2, 5.0, "the empty folder to be reported")
        assert "no .yaml or .yml files" in (service.last_error or "")
        assert len(service.cache.nodes()) == 4
        status, body = service.readiness()
        assert status == 200 and body["status"] == "degraded"
        folder.rmdir()
        shutil.move(aside, folder)
        await until(lambda: service.last_error is None, 5.0, "the input to load again")
        assert service.readiness()[1]["status"] == "ready"

    with_service(folder, scenario)


def test_a_file_is_read_only_once_it_holds_still(tmp_path: Path) -> None:
    """A slow rewrite in place (same content) removed half the proxies for 3 s and moved ~500 VIPs."""
    folder = tmp_path / "mesh"
    write_mesh(folder, 40, per_file=40)
    target = folder / "10-dp-00000.yaml"
    content = target.read_bytes()

    async def scenario(service: Service) -> None:
        before = vips(service.catalog)
        seen: set[int] = set()
        stop = threading.Event()

        def rewrite_slowly() -> None:
            with target.open("wb") as f:  # truncates: the file is empty, then grows chunk by chunk
                for i in range(0, len(content), 400):
                    f.write(content[i : i + 400])
                    f.flush()
                    time.sleep(0.01)
            stop.set()

        writer = threading.Thread(target=rewrite_slowly)
        writer.start()
        while not stop.is_set():
            seen.add(len(service.cache.nodes()))
            await asyncio.sleep(0.005)
        writer.join()
        reloads = service.reloads + service.failed_reloads
        await until(lambda: service.seen is not None and service.seen == fingerprint([folder]), 5.0, "settled")
        assert seen == {40}
        assert vips(service.catalog) == before
        assert service.failed_reloads == 0  # never read half-written
        assert service.reloads + service.failed_reloads - reloads <= 1

    with_service(folder, scenario, settle=0.3)


def test_a_file_that_fails_to_parse_is_retried_once_fixed(tmp_path: Path) -> None:
    folder = tmp_path / "mesh"
    write_mesh(folder, 3)
    target = folder / "10-dp-00001.yaml"
    good = target.read_text()

    async def scenario(service: Service) -> None:
        target.write_text(good[: len(good) // 2] + "\n  - [unclosed\n")
        await until(lambda: service.failed_reloads == 1, 5.0, "the parse error")
        assert len(service.cache.nodes()) == 3
        target.write_text(good)
        await until(lambda: service.last_error is None, 5.0, "the fixed file to load")
        assert len(service.cache.nodes()) == 3

    with_service(folder, scenario)


def test_a_mass_removal_is_held_and_applied_only_if_it_persists(tmp_path: Path) -> None:
    folder = tmp_path / "mesh"
    write_mesh(folder, 30)
    guard = RemovalGuard(max_fraction=0.5, hold=0.5, min_removed=10)

    async def scenario(service: Service) -> None:
        first = vips(service.catalog)
        # A transient state: 20 of 30 files gone, then back before the hold ends: never served.
        aside = tmp_path / "aside"
        aside.mkdir()
        for f in sorted(folder.glob("10-dp-*.yaml"))[:20]:
            shutil.move(f, aside / f.name)
        await until(lambda: guard.held is not None, 5.0, "the removal to be held")
        assert len(service.cache.nodes()) == 30
        status, body = service.readiness()
        assert status == 200 and "removing 20 of 30 proxies" in body["reasons"][0]
        for f in aside.iterdir():
            shutil.move(f, folder / f.name)
        await until(lambda: guard.held is None, 5.0, "the hold to clear")
        assert len(service.cache.nodes()) == 30 and vips(service.catalog) == first
        # A real one: it stays, so it is applied after the hold.
        for f in sorted(folder.glob("10-dp-*.yaml"))[:20]:
            f.unlink()
        await until(lambda: len(service.cache.nodes()) == 10, 5.0, "the removal to apply once it persisted")
        assert service.readiness()[1]["status"] == "ready"
        # ...and a service that comes back keeps its VIP.
        write_mesh(folder, 30)
        await until(lambda: len(service.cache.nodes()) == 30, 5.0, "the services to come back")
        assert vips(service.catalog) == first

    with_service(folder, scenario, guard=guard)


def test_an_alias_bomb_is_refused_and_the_loop_keeps_serving(tmp_path: Path) -> None:
    """A 600-byte alias bomb froze the loop for 22.8 s on every reload."""
    folder = tmp_path / "mesh"
    write_mesh(folder, 3)
    bomb = "type: Mesh\nname: bomb\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    bomb += "".join(f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))

    async def scenario(service: Service) -> None:
        (folder / "99-bomb.yaml").write_text(bomb)
        await until(lambda: service.failed_reloads == 1, 10.0, "the bomb to be refused")
        assert "aliases expand the document beyond" in (service.last_error or "")
        assert len(service.cache.nodes()) == 3

    with_service(folder, scenario)


def test_a_watcher_that_fails_is_restarted_and_shown_in_readyz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher task used to die silently: later edits were never loaded while /healthz said ok."""
    folder = tmp_path / "mesh"
    write_mesh(folder, 2)
    real = InputWatcher.wait
    failures = {"left": 1}

    async def flaky(self: InputWatcher, timeout: float) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("simulated failure")
        return await real(self, timeout)

    async def scenario(service: Service) -> None:
        service.watcher.backoff = 0.3
        monkeypatch.setattr(InputWatcher, "wait", flaky)
        await until(lambda: service.watcher.failures == 1, 5.0, "the failure")
        status, body = service.readiness()
        assert status == 503 and body["watcher"]["last_error"] == "OSError: simulated failure"
        await until(lambda: service.watcher.healthy, 5.0, "the restart")
        write_mesh(folder, 3)
        await until(lambda: len(service.cache.nodes()) == 3, 5.0, "an edit after the restart to load")
        assert service.readiness()[0] == 200

    with_service(folder, scenario)


def test_health_endpoints_are_json_with_status_codes(tmp_path: Path) -> None:
    folder = tmp_path / "mesh"
    write_mesh(folder, 2)

    async def scenario(service: Service) -> None:
        assert await service.debug.route("GET", "/healthz") == (200, "application/json", '{\n  "status": "alive"\n}\n')
        status, _, body = await service.debug.route("GET", "/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready" and json.loads(body)["nodes"] == 2
        await service.watcher.stop()
        status, _, body = await service.debug.route("GET", "/readyz")
        assert status == 503 and json.loads(body)["reasons"] == ["input watcher is not running"]

    with_service(folder, scenario)
