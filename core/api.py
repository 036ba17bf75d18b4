"""Pieces every REST view of the server shares: protocol messages validated into DRF's error format."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from rest_framework.exceptions import ValidationError

from common.validation import parse
from core.parsers import check_json_value

M = TypeVar("M", bound=BaseModel)


def parse_protocol(model: type[M], data: Any) -> M:
    """Validate a protocol message from an agent.

    Args:
        model: The message's pydantic model.
        data: The request body.

    Returns:
        The message.

    Raises:
        ValidationError: A 400 whose body names each bad field by its dotted path (DRF's error format); also
            for what the database could not store (nesting deeper than ``RUCKUS_MAX_JSON_DEPTH``, NUL characters,
            lone surrogates), whatever parser read the body.
    """
    check_json_value(data)
    message, errors = parse(model, data)
    if message is None:
        raise ValidationError(errors)
    return message
