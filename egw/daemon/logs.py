"""Structured (JSON lines) logging for the daemon, with the object each line is about.

Use ``obj_log(logger, kind, key)`` to get an adapter that adds ``{"object": {"kind": ..., "key": ...}}``
to every record. Secrets never reach a log line: callers log names and counts, never keys or tokens.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        obj = getattr(record, "object", None)
        if obj:
            doc["object"] = obj
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, separators=(",", ":"))


class ObjectAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs.setdefault("extra", {})["object"] = self.extra
        return msg, kwargs


def obj_log(logger: logging.Logger, kind: str, key: str) -> ObjectAdapter:
    return ObjectAdapter(logger, {"kind": kind, "key": key})


def setup(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "pyroute2", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
