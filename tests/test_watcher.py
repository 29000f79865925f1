"""The input watcher names the changed paths (notifications or polling), and the file cache re-reads only those.

The service-level guarantees (never serving a half-written input, a mass removal held, a dead watcher
restarted) are in ``test_reliability_input.py``, run with both backends; here are the parts.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

from meshxds.control.folder_service import FolderService
from meshxds.control.reaper import Reaper
from meshxds.control.service import Service
from meshxds.control.watcher import WATCH_ENV, Changes, InputWatcher, relevant, resolve_mode
from meshxds.resources.loader import load_documents
from meshxds.store.folder import FileCache, FolderStore
from meshxds.store.state import STATE_NAME
from tests.resources.util import MESH_EVERYWHERE, dataplane
from tests.support.adsclient import run, until


def dp_file(folder: Path, i: int, address: str | None = None) -> Path:
    path = folder / f"dp-{i}.yaml"
    path.write_text(
        dataplane(f"dp-{i}", address or f"10.0.0.{i + 1}", f"{{port: 8080, tags: {{kuma.io/service: s{i}}}}}")
    )
    return path


def write_mesh(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mesh.yaml").write_text(MESH_EVERYWHERE)
    for i in range(count):
        dp_file(folder, i)


def replace_atomically(path: Path, text: str) -> None:
    """What an editor does on save: write a temporary file beside it, then rename it over the original."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.mark.parametrize("mode", ["notify", "poll"])
def test_the_watcher_names_the_changed_file_and_ignores_a_log_beside_it(tmp_path: Path, mode: str) -> None:
    folder = tmp_path / "mesh"
    write_mesh(folder, 3)
    target = folder / "dp-1.yaml"

    async def body() -> None:
        watcher = InputWatcher([folder], poll_interval=0.02, settle=0.03, mode=mode)
        await watcher.start()
        try:
            assert watcher.backend == mode
            replace_atomically(target, target.read_text().replace("10.0.0.2", "10.0.9.9"))
            changes = await watcher.wait(5.0)
            assert changes is not None and changes.paths is not None
            assert target in changes.paths and all(p.name in ("dp-1.yaml", ".dp-1.yaml.tmp") for p in changes.paths)
            assert changes.first_at > 0 and changes.settled_at >= changes.first_at
            # A log written beside the YAML, over and over: never a change of the input.
            stop = threading.Event()

            def log_forever() -> None:
                with (folder / "app.log").open("a") as f:
                    while not stop.is_set():
                        f.write("line\n")
                        f.flush()
                        stop.wait(0.005)

            writer = threading.Thread(target=log_forever)
            writer.start()
            try:
                assert await watcher.wait(0.5) is None
            finally:
                stop.set()
                writer.join()
            # A new sub-folder with a file in it, then removed: both are changes under the folder.
            sub = folder / "more"
            sub.mkdir()
            dp_file(sub, 7)
            changes = await watcher.wait(5.0)
            assert changes is not None and (changes.paths is None or any(p.is_relative_to(sub) for p in changes.paths))
            shutil.rmtree(sub)
            changes = await watcher.wait(5.0)
            assert changes is not None and (changes.paths is None or any(p.is_relative_to(sub) for p in changes.paths))
        finally:
            await watcher.stop()

    run(body, timeout=30.0)


def test_polling_is_forced_by_the_environment_and_a_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WATCH_ENV, "poll")
    assert resolve_mode(None) == "poll"
    assert resolve_mode("notify") == "notify"  # an explicit option wins
    monkeypatch.setenv(WATCH_ENV, "inotify")
    with pytest.raises(ValueError, match="MESHXDS_WATCH='inotify': expected one of auto, notify, poll"):
        resolve_mode(None)


def test_only_yaml_files_and_folders_are_relevant(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    assert relevant(str(tmp_path / "a.yaml")) and relevant(str(tmp_path / "b.yml"))
    assert relevant(str(tmp_path / "sub"))
    assert relevant(str(tmp_path / "gone"))  # a removed path without a suffix may have been a folder
    assert not relevant(str(tmp_path / "app.log")) and not relevant(str(tmp_path / ".a.yaml.swp"))


def test_changes_merge_into_the_earliest_first_event() -> None:
    a = Changes(frozenset({Path("a")}), 10.0, 11.0)
    b = Changes(frozenset({Path("b")}), 12.0, 13.0)
    merged = a.union(b)
    assert merged.paths == {Path("a"), Path("b")} and merged.first_at == 10.0 and merged.settled_at == 13.0
    assert a.union(Changes(None, 12.0, 13.0)).paths is None


def test_the_file_cache_reads_only_the_changed_paths_and_equals_a_full_read(tmp_path: Path) -> None:
    folder = tmp_path / "mesh"
    write_mesh(folder, 5)
    cache = FileCache()
    cache.load([folder])
    assert cache.reads == 6

    def same_as_full_read() -> None:
        docs = cache.load([folder], changed=set())
        full = load_documents([folder])
        assert [r.origin for r in docs.resources] == [r.origin for r in full.resources]
        assert cache.fingerprint() == tuple(sorted(cache.fingerprint()))

    # One file rewritten (same size, maybe the same mtime tick): read by content, not by stamp.
    changed = dp_file(folder, 2, "10.0.0.9")
    cache.load([folder], changed={changed})
    assert cache.reads == 7 and cache.changed == {changed}
    same_as_full_read()
    # The same content written again: read, found equal, nothing changed.
    dp_file(folder, 2, "10.0.0.9")
    cache.load([folder], changed={changed})
    assert cache.reads == 7 and cache.changed == frozenset()
    # A file added, a file removed, a sub-folder added and then removed.
    added = dp_file(folder, 8)
    (folder / "dp-0.yaml").unlink()
    cache.load([folder], changed={added, folder / "dp-0.yaml"})
    assert cache.reads == 8 and cache.changed == {added, folder / "dp-0.yaml"}
    same_as_full_read()
    sub = folder / "sub"
    sub.mkdir()
    dp_file(sub, 9)
    cache.load([folder], changed={sub})
    assert cache.changed == {sub / "dp-9.yaml"}
    same_as_full_read()
    shutil.rmtree(sub)
    cache.load([folder], changed={sub})
    assert cache.changed == {sub / "dp-9.yaml"}
    same_as_full_read()
    # A path outside the input and a log file are nothing.
    (folder / "app.log").write_text("x")
    cache.load([folder], changed={folder / "app.log", tmp_path / "elsewhere.yaml"})
    assert cache.changed == frozenset()


def test_the_reaper_frees_in_slices_and_keeps_what_is_still_used() -> None:
    class Thing:
        pass

    async def body() -> None:
        kept = Thing()
        old = {i: Thing() for i in range(1000)}
        old[-1] = kept
        alive = sum(1 for o in gc.get_objects() if isinstance(o, Thing))
        reaper = Reaper(budget=0.0, slice_items=50)  # one slice per loop turn
        reaper.release(old, None, Thing())
        assert reaper.busy
        await asyncio.sleep(0)
        assert 0 < len(old) < 1001  # not all at once
        await reaper.drain()
        assert not old and not reaper.busy and reaper.freed == 1002
        del old
        gc.collect()
        assert sum(1 for o in gc.get_objects() if isinstance(o, Thing)) == alive - 1000
        assert isinstance(kept, Thing)

    run(body, timeout=10.0)


@pytest.mark.parametrize("mode", ["notify", "poll"])
def test_the_service_parses_only_the_edited_file_and_records_its_stages(tmp_path: Path, mode: str) -> None:
    folder = tmp_path / "mesh"
    write_mesh(folder, 20)

    async def body() -> None:
        service = Service([folder], poll_interval=0.02, settle=0.03, watch=mode)
        await service.start("127.0.0.1", 0)
        try:
            assert service.input.backend == mode and service.files.reads == 21
            reloads = service.reloads
            target = folder / "dp-4.yaml"
            replace_atomically(target, target.read_text().replace("10.0.0.5", "10.0.7.7"))
            await until(lambda: service.reloads > reloads, 5.0, "the edit to load")
            assert service.files.reads == 22
            times = service.times[-1]
            assert times.changed is not None and target in times.changed and times.files_parsed == 1
            assert 0 < times.first_event <= times.settled <= times.read <= times.catalog <= times.built <= times.applied
            moved = service.dataplane("default.dp-4")
            assert moved is not None and moved.networking.address == "10.0.7.7"
            await service.reaper.drain()
        finally:
            await service.stop()

    run(body, timeout=30.0)


def test_the_folder_service_remembers_its_catalog_off_the_loop_and_restores_the_switch_interval(
    tmp_path: Path,
) -> None:
    """The Catalog's VIPs reach the state after a reload (written in the background); the build's shorter
    GIL switch interval is put back afterwards."""
    folder = tmp_path / "mesh"
    write_mesh(folder, 3)
    before = sys.getswitchinterval()

    async def body() -> None:
        store = FolderStore([folder], state_dir=tmp_path / "state")
        service = FolderService(store, "default", poll_interval=0.02)
        await service.start("127.0.0.1", 0)
        try:
            await service.remembered()
            names = {s["name"] for s in (store.state.get(STATE_NAME) or {}).get("services", [])}
            assert {"s0", "s1", "s2"} <= names
            dp_file(folder, 3)
            await until(lambda: len(service.cache.nodes()) == 4, 5.0, "the new Dataplane")
            await service.remembered()
            names = {s["name"] for s in (store.state.get(STATE_NAME) or {}).get("services", [])}
            assert "s3" in names
            assert sys.getswitchinterval() == before
        finally:
            await service.stop()

    run(body, timeout=30.0)


def test_the_safety_poll_does_not_report_again_what_notifications_reported(tmp_path: Path) -> None:
    """With notifications, the periodic poll is only a net for lost events: an edit already reported must not
    come back as a second batch (it re-read files and held up the next edit's quiet period)."""
    folder = tmp_path / "mesh"
    write_mesh(folder, 3)
    target = folder / "dp-0.yaml"

    async def body() -> None:
        watcher = InputWatcher([folder], poll_interval=0.02, settle=0.03, mode="notify", recheck=3600)
        await watcher.start()
        try:
            replace_atomically(target, target.read_text().replace("10.0.0.1", "10.0.3.3"))
            changes = await watcher.wait(5.0)
            assert changes is not None and changes.paths is not None and target in changes.paths
            await watcher.poll_once()
            assert not watcher.pending
            # ...while a change no notification reported (a lost event) is found by the poll.
            watcher._seen = ((str(folder / "dp-1.yaml"), 0, 0, 0), *(watcher._seen or ()))
            await watcher.poll_once()
            found = watcher.take()
            assert found is not None and found.paths == {folder / "dp-1.yaml"}
        finally:
            await watcher.stop()

    run(body, timeout=30.0)
