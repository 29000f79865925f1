"""How load problems reach the user: one line each on stderr, the same for every command."""

from __future__ import annotations

import sys

from meshxds.resources import LoadResult


def report(result: LoadResult) -> None:
    """Errors then warnings on stderr, one line each."""
    for problem in result.errors:
        print(f"error: {problem}", file=sys.stderr)
    for problem in result.warnings:
        print(f"warning: {problem}", file=sys.stderr)
