"""Where Kuma's reference files are: ``../shared/reference`` beside the checkout (as CI lays it out), or the folder
named by ``MESHXDS_REFERENCE``. They are read at test time and never copied into the repo.

Tests that need them carry ``@pytest.mark.kuma_reference``: without the files they skip with the reason below, unless
``MESHXDS_REQUIRE_REFERENCE=1`` (set by ``.ci/run``), which turns the skip into a failure so CI always runs them.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
REFERENCE = Path(os.environ.get("MESHXDS_REFERENCE") or CHECKOUT.parent / "shared" / "reference")
KUMA_GOLDEN = REFERENCE / "kuma-golden"
KUMA_GOLDEN_ROUTES = REFERENCE / "kuma-golden-routes"
REQUIRED = os.environ.get("MESHXDS_REQUIRE_REFERENCE", "") not in ("", "0")


def missing_reason() -> str | None:
    """Why the reference tests cannot run here, or None when the files are present."""
    if KUMA_GOLDEN.is_dir():
        return None
    return f"Kuma's reference files are not beside this checkout (looked for {KUMA_GOLDEN}; set MESHXDS_REFERENCE)"
