"""The folder store: today's YAML files are the source of truth, read-only through the API.

Control-plane state (VIPs, generated MeshServices, the admin token) lives in ``--state-dir`` as one
JSON file per name, written atomically, so a restart of ``meshxds serve PATH`` never moves a VIP.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshxds.resources.loader import Documents, find_files, load_documents
from meshxds.store.convert import record_of
from meshxds.store.model import Key, NotFound, ReadOnly, Record, Store

READ_ONLY = "the resource folder is the source of truth: edit the files, or run with --store postgres://..."


class StateDir:
    """``<dir>/<name>.json`` files: atomic replace, so a crash leaves the old or the new state, never half."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.memory: dict[str, dict[str, Any]] = {}

    def get(self, name: str) -> dict[str, Any] | None:
        if self.path is None:
            return self.memory.get(name)
        try:
            value = json.loads((self.path / f"{name}.json").read_text())
        except FileNotFoundError:
            return None
        return value if isinstance(value, dict) else None

    def put(self, name: str, value: dict[str, Any]) -> None:
        if self.path is None:
            self.memory[name] = value
            return
        self.path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{name}.")
        with os.fdopen(fd, "w") as f:
            json.dump(value, f, sort_keys=True)
        os.chmod(tmp, 0o600)  # may hold the admin token
        os.replace(tmp, self.path / f"{name}.json")


class FileCache:
    """Documents per file, re-read only when the file's (mtime, size, inode) changed.

    A change to one file of a big folder then costs parsing that file; the rest is reused, so the
    folder mode applies an edit as a change to the resources in that file.
    """

    def __init__(self, zone: str = "default") -> None:
        self.zone = zone
        self.files: dict[Path, tuple[tuple[int, int, int], Documents]] = {}
        self.reads = 0  # files parsed: what the last changes cost

    def load(self, paths: Sequence[str | Path]) -> Documents:
        files, problems = find_files(paths)
        resources: list[Any] = []
        k8s: list[Any] = []
        broken: set[str] = set()
        seen: dict[Path, tuple[tuple[int, int, int], Documents]] = {}
        for path in files:
            try:
                st = path.stat()
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = (-1, -1, -1)
            cached = self.files.get(path)
            if cached is None or cached[0] != stamp or stamp[0] < 0:
                cached = (stamp, load_documents([path], self.zone))
                self.reads += 1
            seen[path] = cached
            docs = cached[1]
            resources += docs.resources
            k8s += docs.k8s
            problems += docs.problems
            broken |= docs.broken_meshes
        self.files = seen
        return Documents(tuple(resources), tuple(k8s), tuple(problems), frozenset(broken))


class FolderStore(Store):
    """Records read from YAML files (load order = age); writes raise ReadOnly."""

    read_only = True
    read_only_reason = READ_ONLY

    def __init__(self, paths: Sequence[str | Path], zone: str = "default", state_dir: str | Path | None = None):
        self.paths = list(paths)
        self.zone = zone
        self.state = StateDir(state_dir)
        self.description = ", ".join(str(p) for p in self.paths)
        self.files = FileCache(zone)

    def records(self) -> list[Record]:
        docs = self.files.load(self.paths)
        out: list[Record] = []
        for item in docs.resources:
            try:
                created = datetime.fromtimestamp(Path(item.origin.file).stat().st_mtime, UTC)
            except OSError:
                created = datetime.now(UTC)
            out.append(record_of(item, creation=created))
        return out

    async def get(self, key: Key) -> Record:
        for record in self.records():
            if record.key == key:
                return record
        raise NotFound(key)

    async def list(self, type: str | None = None, mesh: str | None = None) -> list[Record]:
        return [r for r in self.records() if (type is None or r.type == type) and (mesh is None or r.mesh == mesh)]

    async def create(self, record: Record) -> Record:
        raise ReadOnly(READ_ONLY)

    async def update(self, record: Record) -> Record:
        raise ReadOnly(READ_ONLY)

    async def delete(self, key: Key) -> None:
        raise ReadOnly(READ_ONLY)

    async def get_state(self, name: str) -> dict[str, Any] | None:
        return self.state.get(name)

    async def put_state(self, name: str, value: dict[str, Any]) -> None:
        self.state.put(name, value)
