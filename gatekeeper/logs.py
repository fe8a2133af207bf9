"""JSON-lines logging for long-running services: one object per line on stderr.

Fields passed with `extra={...}` become keys of the object, so a log line
carries the ref, the verdict or the peer as data, not only as prose.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_json_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines, at `level` and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosmtpd logs every command line at INFO, AUTH credentials included, and warns about
    # its own deprecated attributes on every login: only its errors are news.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)
