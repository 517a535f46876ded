"""JSON-lines logging for the long-running services.

One JSON object per line on stderr, so log shippers (Loki, CloudWatch, ``jq``) need no parser.
Context travels as ``extra=`` fields on the log call; the known ones below are copied into the
line when present::

    log.info("trained", extra={"stage": "train", "model_type": "GRU", "duration_ms": 812})
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

#: ``extra=`` keys copied into every JSON line when a log call sets them.
CONTEXT_FIELDS: tuple[str, ...] = (
    "service",
    "stage",
    "identifier",
    "config_hash",
    "model_type",
    "run_id",
    "topic",
    "partition",
    "offset",
    "duration_ms",
    "error_type",
    "dlq_topic",
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: ts, level, logger, msg, context fields, exc."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.service is not None:
            line["service"] = self.service
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_json_logging(
    service: str | None = None, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Replace the root logger's handlers with one JSON-lines handler (call once, at startup)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter that drowns the service's own lines at INFO.
    for noisy in ("botocore", "urllib3", "mlflow", "alembic", "httpx", "cmdstanpy", "prophet"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
