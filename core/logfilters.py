"""Logging filters of the server.

A fleet's heartbeats are most of the server's requests (10,000 agents send 1,000 a second): one
``request_finished`` line for each would drown every other line and cost the server more than the heartbeat itself.
A successful heartbeat leaves no request line; a refused or failed one is logged as any other request, and a change
an agent's heartbeat causes (back online, busy) is logged by the service that records it.
"""

from __future__ import annotations

import logging
import re

#: ``POST /api/v1/agents/<id>/heartbeat/`` as django-structlog formats a request (method and full path).
_HEARTBEAT = re.compile(r"POST /api/v1/agents/[^/?]+/heartbeat/(\?.*)?")


class QuietHeartbeats(logging.Filter):
    """Drop the request log line of a successful agent heartbeat."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for ``request_finished`` of a heartbeat answered below 400.

        Args:
            record: A log record (structlog puts its event dictionary in ``msg``).

        Returns:
            Whether to keep the record.
        """
        event = record.msg
        if not isinstance(event, dict) or event.get("event") != "request_finished":
            return True
        code = event.get("code")
        request = event.get("request")
        return not (isinstance(code, int) and code < 400 and isinstance(request, str) and _HEARTBEAT.fullmatch(request))
