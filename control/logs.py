"""Log setup shared by every long-running command (``serve``, ``demo``): one line per event.

Every line has its time and level; ``--log-format json`` gives one JSON object per line instead.
Long values (a client's node id, a NACK text, a list of names) are cut so one event stays one
readable line, and tracebacks are kept for the unexpected (``log.exception``) only.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

MAX_LINE = 2000  # characters of one log message
_format = "text"
_report = logging.getLogger("meshxds.input")


def short(value: object, limit: int = 200) -> str:
    """``value`` as text, cut to ``limit`` characters with the number of characters left out."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text) - limit} more characters)"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return short(super().format(record), MAX_LINE).replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message (and the error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": short(record.getMessage(), MAX_LINE),
        }
        if record.exc_info:
            out["error"] = short(self.formatException(record.exc_info), MAX_LINE)
        return json.dumps(out)


def setup_logging(default: str = "INFO", fmt: str = "text") -> None:
    """Log lines on stderr; ``MESHXDS_LOG=DEBUG`` (or WARNING...) overrides the level."""
    global _format
    _format = fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=os.environ.get("MESHXDS_LOG", default).upper(), handlers=[handler], force=True)


def say(level: str, line: str) -> None:
    """A problem with the input: ``error: ...`` exactly as ``meshxds validate`` prints it, or a JSON log line."""
    if _format == "json":
        _report.log(logging.ERROR if level == "error" else logging.WARNING, line)
    else:
        print(f"{level}: {line}" if level in ("error", "warning") else line, file=sys.stderr)
