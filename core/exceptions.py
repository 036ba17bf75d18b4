"""DRF's exception handler, plus Django's refusals of a request it cannot read, answered in the API's format.

Django refuses some requests itself while the body is read: more than ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` form
fields, a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, a malformed multipart body. Those exceptions (subclasses of
``SuspiciousOperation`` or ``BadRequest``) would otherwise become Django's HTML error page; here they are a 400
``{"detail": "..."}`` like every other refusal of the API.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http.multipartparser import MultiPartParserError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler; a request Django could not read is a 400 with the reason.

    Args:
        exc: The exception the view raised (reading ``request.data`` included).
        context: DRF's context (view, request).

    Returns:
        The error response, or None for an exception that is a server error.
    """
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "request body too large"}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, (SuspiciousOperation, BadRequest, MultiPartParserError)):
        return Response({"detail": f"malformed request: {exc}"}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
