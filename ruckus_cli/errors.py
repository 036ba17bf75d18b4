"""Error bodies of the RUCKUS API (Django REST framework's format) as lines a person can read.

The server answers a refused request with either ``{"detail": "..."}`` or field errors: a message list per
field, nested like the request body (``{"task": {"params": {"num_samples": ["..."]}}}``, or per list item:
``{"models": [{}, {"name": ["..."]}]}``), with ``non_field_errors`` for errors about an object as a whole.
Every place in the CLI that reports such a body goes through :func:`api_error_lines`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

#: Longest part of a non-JSON error body (an HTML error page, a proxy's text) that is shown.
MAX_TEXT_CHARS = 300
#: Path of errors that belong to no field: ``non_field_errors`` at the top, or a bare message list.
WHOLE_BODY = "body"


def api_error_lines(body: Any, locate: Callable[[str], str] | None = None) -> list[str]:
    """Flatten an API error body into one ``dotted.path: message`` line per message.

    ``{"detail": "..."}`` gives just the message; field errors give ``field.sub: msg`` with list items by
    index (``models.1.name: msg``); ``non_field_errors`` are reported at the path of their object (``body``
    at the top); a body that is not JSON gives its first :data:`MAX_TEXT_CHARS` characters.

    Args:
        body: The decoded JSON body, or the text of an answer that was not JSON.
        locate: Where a field path was written (e.g. ``file.yaml:12``); when given, each field line starts
            with it (``file.yaml:12: task.params.num_samples: msg``).

    Returns:
        The lines, in the body's order (empty for an empty body).
    """
    if isinstance(body, dict) and set(body) == {"detail"}:
        return [str(body["detail"])]
    if not isinstance(body, dict | list):
        text = str(body)[:MAX_TEXT_CHARS]
        return [text] if text else []
    return [f"{locate(path)}: {path}: {message}" if locate else f"{path}: {message}"
            for path, message in _field_messages(body, "")]


def _field_messages(value: Any, prefix: str) -> Iterator[tuple[str, str]]:
    """``(dotted.path, message)`` pairs of a (nested) field-error value, in document order."""
    if isinstance(value, dict):
        for key, sub in value.items():
            # Errors about an object as a whole belong to the object's path, not to a "non_field_errors" field.
            path = (prefix or WHOLE_BODY) if key == "non_field_errors" else f"{prefix}.{key}" if prefix else str(key)
            yield from _field_messages(sub, path)
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        for message in value:
            yield prefix or WHOLE_BODY, message
    elif isinstance(value, list):
        # A list field: one entry per item, empty ({}) for the items without errors.
        for index, item in enumerate(value):
            yield from _field_messages(item, f"{prefix}.{index}" if prefix else str(index))
    else:
        yield prefix or WHOLE_BODY, str(value)
