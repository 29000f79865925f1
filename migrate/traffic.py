"""Live traffic for ``migrate plan --server URL``: a running ``meshxds serve``'s ``/traffic`` (its debug port).

The server keeps, per proxy and cluster, what Envoy's stats sink last reported (``xds/metrics_sink.py``);
here it becomes the plan's ``Traffic``. A server that cannot be reached is bad input, not "idle".
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from meshxds.migrate.inputs import InputError
from meshxds.migrate.plan import Traffic
from meshxds.xds.metrics_sink import Flow


def fetch(url: str, timeout: float = 5.0) -> Traffic:
    """GET ``<url>/traffic``; ``url`` is the debug endpoint, e.g. ``http://127.0.0.1:18001``."""
    target = url.rstrip("/") + "/traffic"
    if "://" not in target:
        target = "http://" + target
    try:
        with urllib.request.urlopen(target, timeout=timeout) as resp:
            data: Any = json.loads(resp.read())
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise InputError([f"--server {url!r}: cannot read {target}: {exc}"]) from exc
    if not isinstance(data, dict):
        raise InputError([f"--server {url!r}: {target} is not a traffic report"])
    now = time.time()
    try:
        return {node: {c: _flow(f, now) for c, f in clusters.items()} for node, clusters in data.items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError([f"--server {url!r}: {target} is not a traffic report ({exc!r})"]) from exc


def _flow(f: dict[str, Any], now: float) -> Flow:
    rates = (float(f["requestsPerSecond"]), float(f["connectionsPerSecond"]), float(f["bytesPerSecond"]))
    return Flow(*rates, now - float(f["ageSeconds"]))
