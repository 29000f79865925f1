"""The example mesh (examples/universal-demo) on private loopback addresses, for tests that run it for real."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "examples" / "universal-demo"


def private_copy(folder: Path, octet: int | None = None) -> int:
    """Copy the example to ``folder`` with 127.0.0.x rewritten to 127.<octet>.0.x; returns the octet.

    Test runs that overlap (several suites on one machine) then never compete for the same ports.
    """
    octet = octet if octet is not None else random.randrange(10, 250)
    shutil.copytree(EXAMPLE, folder, dirs_exist_ok=True)
    for f in folder.glob("*.yaml"):
        f.write_text(f.read_text().replace("127.0.0.", f"127.{octet}.0."))
    return octet
