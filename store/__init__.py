"""Where resources live: the YAML folder (default, read-only) or PostgreSQL, behind one Store interface.

Also the change feed (LISTEN/NOTIFY with resync), leader election (advisory lock), the persisted
control-plane state (VIPs, generated MeshServices, admin token) and the Mirror that turns a store's
records into a Catalog one change at a time.
"""

from __future__ import annotations

from meshxds.store.model import (
    AlreadyExists,
    Change,
    Conflict,
    Key,
    MeshNotFound,
    NotFound,
    ReadOnly,
    Record,
    Store,
    StoreError,
)

__all__ = [
    "AlreadyExists",
    "Change",
    "Conflict",
    "Key",
    "MeshNotFound",
    "NotFound",
    "ReadOnly",
    "Record",
    "Store",
    "StoreError",
]
