"""The folder service with memory: VIPs and generated MeshServices kept in ``--state-dir``.

``Service`` watches the files; this one also remembers its Catalog in the state directory, so a
restart never moves a VIP. ``FolderView`` is what the read-only API shows of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshxds.control.service import Service
from meshxds.control.watcher import Changes
from meshxds.resources.catalog import Catalog
from meshxds.snapshots.dump import to_json_dict
from meshxds.store.folder import FolderStore
from meshxds.store.state import STATE_NAME, previous_catalog, remembered


class FolderService(Service):
    """The folder service that also remembers its Catalog in ``--state-dir`` (a restart keeps VIPs)."""

    def __init__(
        self,
        store: FolderStore,
        zone: str,
        poll_interval: float,
        state_dir: str | Path | None = None,
        secure: bool = False,
        tls_hosts: Sequence[str] = (),
    ) -> None:
        """``state_dir``/``secure``/``tls_hosts``: as ``Service`` (mesh CAs, identities, TLS and tokens)."""
        super().__init__(
            store.paths, zone=zone, poll_interval=poll_interval, state_dir=state_dir, secure=secure, tls_hosts=tls_hosts
        )
        self.store = store
        self.catalog = previous_catalog(store.state.get(STATE_NAME), zone)
        self._remembered: dict[str, Any] | None = None
        self._pending: Catalog | None = None  # the latest Catalog not yet remembered
        self._remembering: asyncio.Task[None] | None = None

    async def reload(self, changes: Changes | None = None, files_only: bool = False) -> bool:
        """Reload, then remember the Catalog's VIPs in a worker thread, in the background: serialising 1,000
        services takes tens of milliseconds, which would hold up the push (on the loop) or the next reload."""
        catalog = self.catalog
        ok = await super().reload(changes, files_only)
        if ok and self.catalog is not None and self.catalog is not catalog:
            self._pending = self.catalog
            if self._remembering is None or self._remembering.done():
                self._remembering = asyncio.create_task(self._remember_latest())
        return ok

    async def _remember_latest(self) -> None:
        while self._pending is not None:
            catalog, self._pending = self._pending, None
            await asyncio.to_thread(self.remember, catalog)

    async def remembered(self) -> None:
        """Until the latest Catalog is in the state (tests, shutdown)."""
        if self._remembering is not None:
            await asyncio.shield(self._remembering)

    async def stop(self, grace: float = 0.2) -> None:
        await self.remembered()
        await super().stop(grace)

    def remember(self, catalog: Catalog) -> None:
        state = remembered(catalog)
        if state != self._remembered:
            self.store.state.put(STATE_NAME, state)
            self._remembered = state


class FolderView:
    """The API's View of the folder service: its Catalog and a proxy's config."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def catalog(self) -> Catalog | None:
        return self.service.catalog

    def config(self, node_id: str) -> dict[str, Any] | None:
        snap = self.service.cache.get(node_id)
        return to_json_dict(snap) if snap is not None else None
