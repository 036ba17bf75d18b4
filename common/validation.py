"""Pydantic validation errors as field paths: the one translation every API of RUCKUS uses.

A field path is dotted (``task.params.num_samples``, ``models.1.name``); the message drops pydantic's
``Value error,`` prefix and names unknown fields plainly, so errors read the same from the server, the agent
and the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

#: Locations pydantic (and FastAPI) put before the field path that say where, not which field.
_LOCATION_PARTS = frozenset({"body", "query", "path"})


def error_fields(
    errors: Iterable[Mapping[str, Any]],
    prefix: str = "",
    *,
    default_field: str = "body",
    unknown: str = "unknown field",
) -> dict[str, str]:
    """Turn pydantic-style error entries (``{"loc", "msg", "type"}``) into ``{"dotted.field.path": "message"}``.

    Also reads FastAPI's request validation errors, which carry the same entries.

    Args:
        errors: The entries (``exc.errors()``).
        prefix: Dotted path put before each field (e.g. ``task.params``).
        default_field: Key for an error about the whole input (no location), when there is no prefix.
        unknown: Message for a field the model does not have.

    Returns:
        One message per field (the first error of a field wins).
    """
    out: dict[str, str] = {}
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in _LOCATION_PARTS)
        key = ".".join(part for part in (prefix, loc) if part) or default_field
        message = unknown if err.get("type") == "extra_forbidden" else str(err.get("msg", "invalid"))
        out.setdefault(key, message.removeprefix("Value error, "))
    return out


def field_errors(
    exc: ValidationError, prefix: str = "", *, default_field: str = "body", unknown: str = "unknown field"
) -> dict[str, str]:
    """Turn a pydantic error into ``{"dotted.field.path": "message"}`` (see :func:`error_fields`).

    Args:
        exc: The validation error.
        prefix: Dotted path put before each field (e.g. ``task.params``).
        default_field: Key for an error about the whole input (no location), when there is no prefix.
        unknown: Message for a field the model does not have.

    Returns:
        One message per field.
    """
    return error_fields(exc.errors(), prefix, default_field=default_field, unknown=unknown)


def parse(
    model: type[M], data: Any, prefix: str = "", *, unknown: str = "unknown field", default_field: str = ""
) -> tuple[M | None, dict[str, str]]:
    """Validate ``data`` once, returning the model or the field errors.

    Args:
        model: The pydantic model.
        data: The input.
        prefix: Dotted path put before each field in the errors.
        unknown: Message for a field the model does not have.
        default_field: Key for an error about the whole input (default: the prefix, else ``body``).

    Returns:
        ``(instance, {})`` when valid, ``(None, errors)`` otherwise.
    """
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, field_errors(exc, prefix, default_field=default_field or prefix or "body", unknown=unknown)
