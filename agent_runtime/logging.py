"""Structured logging for the agent (structlog).

Tokens, credentials and API keys are never passed to a logger: call sites log ids and reasons only.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info", *, json: bool = False) -> None:
    """Configure structlog and the standard library logging for the agent process.

    Args:
        level: Log level name (``debug``, ``info``, ``warning`` ...).
        json: Render JSON lines instead of the human console format.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=numeric)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        # Plain tracebacks: the default rich renderer prints every frame's locals (slow, and may show secrets).
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Look sys.stderr up per logger, not once: a stream captured at configure time (tests, embedding
        # applications) may be closed later, and writing to it would raise on every log call.
        logger_factory=lambda *_args: structlog.PrintLogger(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """Return a bound structlog logger named ``name``.

    Args:
        name: Logger name, usually ``__name__``.

    Returns:
        The logger.
    """
    return structlog.get_logger(name)
