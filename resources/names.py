"""MeshService name rules (DNS-1035, at most 63 characters), shared by loading, validation and generation."""

from __future__ import annotations

import re

DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
MAX_NAME = 63
DNS1035_MESSAGE = (
    "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and ending with "
    "a letter or digit"
)


def is_dns1035(name: str) -> bool:
    return len(name) <= MAX_NAME and DNS1035.fullmatch(name) is not None


def check_name(name: str) -> str | None:
    """Why ``name`` cannot name a MeshService, or None."""
    if len(name) > MAX_NAME:
        return f"must be at most {MAX_NAME} characters long (is {len(name)})"
    if not is_dns1035(name):
        return DNS1035_MESSAGE
    return None
