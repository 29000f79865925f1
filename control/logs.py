"""Log setup shared by every long-running command (``serve``, ``demo``)."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(default: str = "INFO") -> None:
    """Log lines on stderr; ``MESHXDS_LOG=DEBUG`` (or WARNING...) overrides the level."""
    logging.basicConfig(
        level=os.environ.get("MESHXDS_LOG", default).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
