"""The HTTP client behind ``meshxds apply/get/delete/inspect``: Kuma's API at ``--api`` (or MESHXDS_API).

The admin token comes from ``--token-file`` or MESHXDS_TOKEN and goes out as a Bearer header.
Errors from the server are Kuma's /std-errors JSON; ``describe`` turns one into a single line.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshxds.store.model import KINDS_BY_PLURAL, PLURALS, is_global

DEFAULT_API = "http://127.0.0.1:5681"


class ApiError(Exception):
    """A failed call: status and the server's error JSON (or text)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(describe(status, body))
        self.status = status
        self.body = body


def describe(status: int, body: Any) -> str:
    if not isinstance(body, dict):
        return f"HTTP {status}: {body}"
    text = f"{body.get('title', 'error')}: {body.get('detail', '')} (HTTP {status})"
    fields = [f"{p.get('field')}: {p.get('reason')}" for p in body.get("invalid_parameters") or []]
    return text + ("; " + "; ".join(fields) if fields else "")


def add_client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", default=None, help=f"control plane API URL (default $MESHXDS_API or {DEFAULT_API})")
    p.add_argument("--token-file", help="file holding the admin token (default $MESHXDS_TOKEN)")


@dataclass
class Client:
    base: str
    token: str | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Client:
        base = args.api or os.environ.get("MESHXDS_API") or DEFAULT_API
        token = Path(args.token_file).read_text().strip() if args.token_file else os.environ.get("MESHXDS_TOKEN")
        return cls(base.rstrip("/"), token or None)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, parse(resp.read())
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, parse(exc.read())) from None

    def get(self, path: str) -> Any:
        return self.call("GET", path)[1]


def parse(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def resource_kind(arg: str) -> str | None:
    """``meshservices``, ``meshservice`` or ``MeshService`` → ``MeshService``."""
    lowered = arg.lower()
    for kind, plural in PLURALS.items():
        if lowered in (plural, kind.lower()):
            return kind
    return KINDS_BY_PLURAL.get(lowered)


def resource_path(kind: str, mesh: str, name: str | None = None) -> str:
    plural = PLURALS[kind]
    base = f"/{plural}" if is_global(kind) else f"/meshes/{mesh}/{plural}"
    return f"{base}/{name}" if name else base
