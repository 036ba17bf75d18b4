"""Reading an agent's result body: larger than other requests (a load sweep carries every request's timings).

Django refuses any body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB by default) when it is read, which is right for
every user request but too small for a load result: a load point's requests take about 200 bytes each plus about 20
per streamed chunk (its inter-token gaps). The result callback reads its body here instead, up to
``RUCKUS_MAX_RESULT_BYTES`` (default :data:`DEFAULT_MAX_RESULT_BYTES`, 256 MiB: a 100,000-request point whose
requests stream up to about 100 chunks each), and answers a larger one with 413 before reading it.
"""

from __future__ import annotations

import codecs
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.request import Request
from rest_framework.settings import api_settings

from core.parsers import loads

#: Default of ``RUCKUS_MAX_RESULT_BYTES``: the largest result body an agent may send.
DEFAULT_MAX_RESULT_BYTES = 256 * 1024 * 1024


class ResultTooLarge(APIException):
    """413: a result body over ``RUCKUS_MAX_RESULT_BYTES``, refused before it is read."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "result_too_large"


def max_result_bytes() -> int:
    """The largest result body accepted (``RUCKUS_MAX_RESULT_BYTES``)."""
    return int(getattr(settings, "RUCKUS_MAX_RESULT_BYTES", DEFAULT_MAX_RESULT_BYTES))


def _too_large(size: int | str, limit: int) -> ResultTooLarge:
    """The 413 refusal, saying what to do about it."""
    return ResultTooLarge(
        f"result body of {size} bytes is larger than this server accepts ({limit} bytes, RUCKUS_MAX_RESULT_BYTES): "
        "run fewer requests per load point (num_requests or duration_s), or ask the operator to raise the limit"
    )


def read_result_body(request: Request) -> Any:
    """The decoded JSON body of a result callback, up to :func:`max_result_bytes`.

    A body that is not JSON, or that something has already started to read, goes through DRF's parsers as any
    other request's (and their limits).

    Args:
        request: The authenticated callback request.

    Returns:
        The decoded body.

    Raises:
        ResultTooLarge: The body is over the limit (413), told by its ``Content-Length`` or found while reading.
        ParseError: Malformed JSON (400).
        ValidationError: A value that cannot be stored, naming its field (400).
    """
    django_request = request._request
    if not (request.content_type or "").startswith("application/json") or django_request._read_started:
        return request.data
    limit = max_result_bytes()
    declared = django_request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(declared, limit)
    # Read one byte past the limit: a body without a (true) length cannot slip past it.
    body = django_request.read(limit + 1)
    if len(body) > limit:
        raise _too_large(f"more than {limit}", limit)
    encoding = django_request.encoding or settings.DEFAULT_CHARSET
    try:
        text = codecs.decode(body, encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ParseError(f"JSON parse error - {exc}") from exc
    if not text.strip():
        return {}
    # Only the nesting here: the protocol's parsing checks every string and number of the message anyway
    # (core.api.parse_protocol), and one walk over a sweep's millions of values is enough.
    return loads(text, strict_constants=api_settings.STRICT_JSON, storable=False)
