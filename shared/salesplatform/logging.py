"""Structured JSON logs: ids are fields (event_id, correlation_id, …), never text in prose.

Everything a service process logs is one JSON object a line on stdout: the platform's own
structlog loggers and every standard-library logger (uvicorn's server and access logs, asyncpg,
nats) through the same processors. A traceback is a field (`exception`: the frames as JSON),
never lines of text in the stream.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

# Run on every line, from structlog or the standard library.
_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _standard_library_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.dict_tracebacks,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    return handler


def configure_logging(service: str, level: str = "INFO") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(_standard_library_handler())
    root.setLevel(numeric)
    # uvicorn's loggers keep no handlers of their own (the server runs with log_config=None):
    # their lines reach the root's JSON handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Written straight to stdout, not through the standard library: the platform's own
        # lines are the many (every refused command), and this is the cheaper path.
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
