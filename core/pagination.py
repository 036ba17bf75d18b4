"""Pagination of every list: ``limit`` and ``offset`` checked, ``limit`` capped at ``RUCKUS_MAX_PAGE_SIZE``."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

#: Default of ``RUCKUS_MAX_PAGE_SIZE``: the most items one page holds; a larger ``limit`` is lowered to it.
DEFAULT_MAX_PAGE_SIZE = 1000
#: The largest ``offset`` accepted (the database's integers are bounded; no list comes near it).
MAX_OFFSET = 2**31 - 1
#: A page parameter: optional sign, then at most 30 ASCII digits (longer is out of range anyway).
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")


def _integer(request: Request, name: str, minimum: int, maximum: int | None) -> int | None:
    """The query parameter ``name`` as an integer in ``[minimum, maximum]``; None when absent.

    Raises:
        ValidationError: 400 naming the parameter when it is not an integer or out of range.
    """
    raw = request.query_params.get(name)
    if raw is None:
        return None
    bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
    # int() would also take "1_000", " 7" or other scripts' digits; a page parameter is plain ASCII digits.
    if not _INTEGER.fullmatch(raw):
        raise ValidationError({name: [f"{name} must be an integer {bounds}, not {raw[:40]!r}"]})
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        raise ValidationError({name: [f"{name} must be an integer {bounds}, not {raw[:40]!r}"]})
    return value


class Pagination(LimitOffsetPagination):
    """Limit/offset pagination that answers junk with a 400 naming the parameter.

    ``limit`` must be a whole number of at least 1 (one larger than ``RUCKUS_MAX_PAGE_SIZE`` is lowered to it);
    ``offset`` a whole number from 0 to :data:`MAX_OFFSET`.
    """

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        """The largest page (``RUCKUS_MAX_PAGE_SIZE``)."""
        return int(getattr(settings, "RUCKUS_MAX_PAGE_SIZE", DEFAULT_MAX_PAGE_SIZE))

    def get_limit(self, request: Request) -> int:
        """The page size asked for, capped at :attr:`max_limit` (the default page size when absent)."""
        limit = _integer(request, self.limit_query_param, 1, None)
        if limit is None:
            return min(self.default_limit, self.max_limit)
        return min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        """Where the page starts (0 when absent)."""
        return _integer(request, self.offset_query_param, 0, MAX_OFFSET) or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        """``limit`` and ``offset`` with their bounds, so that clients (and the schema's users) know them."""
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = (
                    f"Number of results to return per page (at most {self.max_limit}; a larger value is lowered "
                    "to it)."
                )
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"]["minimum"] = 0
                parameter["schema"]["maximum"] = MAX_OFFSET
        return parameters
