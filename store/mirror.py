"""An in-memory copy of a store, kept current one change at a time, that builds the Catalog.

A change notification names one resource: the mirror re-reads that row only and re-parses that
record only (parsed records are cached by version), so one write costs one query and one parse
before the Catalog is assembled and handed to the incremental Builder. A RESYNC re-reads everything
(after a lost connection, or at start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from meshxds.resources import Catalog, LoadResult, catalog_from_documents
from meshxds.resources.errors import Origin, Problem
from meshxds.resources.health import HealthReport
from meshxds.resources.loader import Documents, Loaded
from meshxds.store.convert import STORE_FILE, oldest_first, parse_record
from meshxds.store.model import Change, Key, NotFound, Record, Store


@dataclass(frozen=True)
class Parsed:
    version: int
    item: Loaded | None
    problems: tuple[Problem, ...]


class Mirror:
    """Records by key plus their parsed form; ``catalog()`` assembles them oldest first."""

    def __init__(self, store: Store, zone: str = "default") -> None:
        self.store = store
        self.zone = zone
        self.records: dict[Key, Record] = {}
        self._parsed: dict[Key, Parsed] = {}
        self.parses = 0  # how many records were parsed: what a change cost

    async def resync(self) -> None:
        fresh = {r.key: r for r in await self.store.list()}
        self.records = fresh
        self._parsed = {k: p for k, p in self._parsed.items() if k in fresh and fresh[k].version == p.version}

    async def apply(self, change: Change) -> bool:
        """Bring one key (or everything, on RESYNC) up to date; True when something changed."""
        if change.action == "RESYNC" or change.key is None:
            before = dict(self.records)
            await self.resync()
            return before != self.records
        key = change.key
        try:
            record = await self.store.get(key)
        except NotFound:
            gone = self.records.pop(key, None) is not None
            if key.type == "Mesh":  # the cascade deleted everything in it
                for k in [k for k in self.records if k.mesh == key.name]:
                    del self.records[k]
                    gone = True
            return gone
        if self.records.get(key) == record:
            return False
        self.records[key] = record
        return True

    def parsed(self, record: Record) -> Parsed:
        cached = self._parsed.get(record.key)
        if cached is not None and cached.version == record.version:
            return cached
        item, problems = parse_record(record, 0, self.zone)
        self.parses += 1
        parsed = Parsed(record.version, item, tuple(problems))
        self._parsed[record.key] = parsed
        return parsed

    def catalog(
        self,
        previous: Catalog | None = None,
        connected: frozenset[str] = frozenset(),
        records: list[Record] | None = None,
        health: Mapping[str, HealthReport] | None = None,
        dns_ports: Mapping[str, int] | None = None,
    ) -> LoadResult:
        """The Catalog of ``records`` (default: the mirror's; a worker thread passes a copy taken on the loop)."""
        items: list[Loaded] = []
        problems: list[Problem] = []
        chosen = list(self.records.values()) if records is None else records
        for index, record in enumerate(oldest_first(chosen), start=1):
            parsed = self.parsed(record)
            origin = Origin(STORE_FILE, index)
            if parsed.item is not None:
                items.append(replace(parsed.item, origin=origin))
            problems += [replace(p, index=index) for p in parsed.problems]
        docs = Documents(tuple(items), (), tuple(problems))
        return catalog_from_documents(docs, self.zone, previous, connected, health=health, dns_ports=dns_ports)
