"""The folder store: today's YAML files are the source of truth, read-only through the API.

Control-plane state (VIPs, generated MeshServices, the admin token) lives in ``--state-dir`` as one
JSON file per name, written atomically, so a restart of ``meshxds serve PATH`` never moves a VIP.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshxds.resources.errors import Problem
from meshxds.resources.loader import YAML_SUFFIXES, Documents, find_files, load_documents, yaml_files_under
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


@dataclass(frozen=True)
class CachedFile:
    """One file's documents, with what they were read from."""

    stamp: tuple[int, int, int]  # (mtime_ns, size, inode); (-1, -1, -1) when it could not be stat'ed
    digest: bytes  # of the bytes parsed: a rewrite with the same content (or stamp) is told apart by this
    docs: Documents


class FileCache:
    """Documents per file, parsed again only when the file's content changed.

    A change to one file of a big folder then costs reading that file; the rest is reused, so the
    folder mode applies an edit as a change to the resources in that file. ``load`` without
    ``changed`` walks the folders and compares each file's (mtime, size, inode); with ``changed``
    (the paths the watcher saw change) it looks only at those: files, folders added or removed.
    """

    def __init__(self, zone: str = "default") -> None:
        self.zone = zone
        self.files: dict[Path, CachedFile] = {}
        self.reads = 0  # files parsed: what the last changes cost
        self.changed: frozenset[Path] = frozenset()  # files whose documents the last load changed, added or dropped
        self.unstable: frozenset[Path] = frozenset()  # files that changed while the last load read them
        self._roots: list[Path] | None = None
        self._problems: list[Problem] = []  # the last walk's problems with the roots themselves
        self._order: list[Path] = []  # the files in load order
        self._listed: set[Path] = set()
        self._touched: set[Path] = set()
        self._unstable: set[Path] = set()

    def load(self, paths: Sequence[str | Path], changed: Collection[Path] | None = None) -> Documents:
        """Every file's documents, in load order; ``changed``: only these paths may differ from the last load."""
        roots = [Path(p) for p in paths]
        self._touched = set()
        self._unstable = set()
        if changed is None or roots != self._roots or not self._update(roots, changed):
            self._scan(roots)
        self.changed = frozenset(self._touched)
        self.unstable = frozenset(self._unstable)
        if any((p in self.files) != (p in self._listed) for p in self.changed):  # added or removed: sort again
            self._order = sorted(self.files, key=lambda p: p.as_posix())
            self._listed = set(self._order)
        return self.documents()

    def documents(self) -> Documents:
        resources: list[Any] = []
        k8s: list[Any] = []
        problems: list[Problem] = list(self._problems)
        broken: set[str] = set()
        for path in self._order:
            docs = self.files[path].docs
            resources += docs.resources
            k8s += docs.k8s
            problems += docs.problems
            broken |= docs.broken_meshes
        return Documents(tuple(resources), tuple(k8s), tuple(problems), frozenset(broken))

    def fingerprint(self) -> tuple[tuple[str, int, int, int], ...]:
        """The files as last read, in the watcher's ``fingerprint`` form (the input state a reload served)."""
        return tuple((str(p), *self.files[p].stamp) for p in self._order)

    def _scan(self, roots: list[Path]) -> None:
        files, problems = find_files(roots)
        if problems != self._problems:
            self._touched.update(roots)  # a root went missing, came back empty...: that is a change too
        self._roots = roots
        self._problems = problems
        seen = set(files)
        for path in [p for p in self.files if p not in seen]:
            del self.files[path]
            self._touched.add(path)
        for path in files:
            self._refresh(path, trust_stamp=True)

    def _update(self, roots: list[Path], changed: Collection[Path]) -> bool:
        """Apply the changed paths; False when only a full walk can tell (a root itself, an unreadable folder)."""
        if self._problems:
            return False  # the last walk found a root missing, empty or unreadable: walk again
        folders = [r for r in roots if r in self._dirs]
        for path in changed:
            if path in roots:
                return False
            if not any(path.is_relative_to(f) for f in folders):
                continue  # not an input (a file root's neighbour)
            if path.suffix in YAML_SUFFIXES and path.is_file():
                self._refresh(path, trust_stamp=False)
            elif path.is_dir():
                found, unreadable = yaml_files_under(path)
                if unreadable:
                    return False
                for gone in [p for p in self.files if p.is_relative_to(path) and p not in set(found)]:
                    del self.files[gone]
                    self._touched.add(gone)
                for f in found:
                    self._refresh(f, trust_stamp=True)
            else:  # removed (a file, or a folder and everything under it)
                for gone in [p for p in self.files if p == path or p.is_relative_to(path)]:
                    del self.files[gone]
                    self._touched.add(gone)
        # A folder left without files says so, as a walk would.
        return all(any(p.is_relative_to(f) for p in self.files) for f in folders)

    @property
    def _dirs(self) -> set[Path]:
        return {r for r in self._roots or () if r.is_dir()}

    def _refresh(self, path: Path, trust_stamp: bool) -> None:
        """Read ``path`` again unless its stamp (when trusted) or its bytes show it unchanged."""
        stamp = file_stamp(path)
        cached = self.files.get(path)
        if trust_stamp and cached is not None and cached.stamp == stamp and stamp[0] >= 0:
            return
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if cached is not None and cached.digest == digest and stamp[0] >= 0:
            self.files[path] = CachedFile(stamp, digest, cached.docs)
            return
        docs = load_documents([path], self.zone)
        self.reads += 1
        after = file_stamp(path)
        if after != stamp:
            self._unstable.add(path)  # written while read: the service reads it again once it is quiet
        self.files[path] = CachedFile(stamp, digest, docs)
        self._touched.add(path)


def file_stamp(path: Path) -> tuple[int, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (-1, -1, -1)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


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
