"""Filters shared by the apps' filter sets: a date-time parameter the database can always compare with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC.

    Postgres refuses UTC offsets beyond 15:59 (``+20:00`` is valid ISO 8601), and a date at the edge of the
    calendar can leave it once converted: both are a validation error (400 naming the parameter) here instead of
    a database error.
    """

    def to_python(self, value: Any) -> datetime | None:
        """Parse the value and express it in UTC (a parameter given empty is refused: leave it out instead)."""
        if value == "":
            raise ValidationError("Enter a valid date/time (or leave the parameter out).", code="invalid")
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise ValidationError("date/time is out of range once converted to UTC", code="invalid") from exc


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` whose value is converted to UTC (see :class:`UTCDateTimeField`)."""

    field_class = UTCDateTimeField
