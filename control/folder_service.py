"""The folder service with memory: VIPs and generated MeshServices kept in ``--state-dir``.

``Service`` watches the files; this one also remembers its Catalog in the state directory, so a
restart never moves a VIP. ``FolderView`` is what the read-only API shows of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshxds.control.service import Built, Service
from meshxds.control.watcher import Fingerprint
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

    def apply(self, built: Built, key: Fingerprint | None = None) -> bool:
        ok = super().apply(built, key)
        if ok and self.catalog is not None:
            self.store.state.put(STATE_NAME, remembered(self.catalog))
        return ok


class FolderView:
    """The API's View of the folder service: its Catalog and a proxy's config."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def catalog(self) -> Catalog | None:
        return self.service.catalog

    def config(self, node_id: str) -> dict[str, Any] | None:
        snap = self.service.cache.get(node_id)
        return to_json_dict(snap) if snap is not None else None
