"""Where Kuma's reference golden files are: ``../shared/reference`` beside the checkout (as CI lays it out),
else the workplace's ``/work/shared/reference``. They are read at test time and never copied into the repo."""

from __future__ import annotations

from pathlib import Path

_CANDIDATES = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference",
    Path("/work/shared/reference"),
)

REFERENCE = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
KUMA_GOLDEN = REFERENCE / "kuma-golden"
