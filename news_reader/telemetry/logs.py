"""News Reader's log records as JSON lines (python-json-logger): time, level, logger, event and the event's fields."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

_HANDLER = "news_reader.json"


def configure_logging(stream: TextIO | None = None) -> None:
    """Write the `news_reader` loggers' records from INFO up to `stream` (standard output), one JSON object a line.
    Calling it again replaces the handler."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.set_name(_HANDLER)
    handler.setFormatter(JsonFormatter(
        ["levelname", "name", "message"], timestamp="time",
        rename_fields={"levelname": "level", "name": "logger", "message": "event"},
    ))
    logger = logging.getLogger("news_reader")
    logger.handlers = [h for h in logger.handlers if h.get_name() != _HANDLER] + [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
