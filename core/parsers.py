r"""Request bodies that can be stored: JSON no deeper than a limit, strings without NUL or lone surrogates.

Postgres refuses a NUL character (``\u0000``) in text and jsonb, and a lone UTF-16 surrogate (``\ud800``)
cannot be encoded as UTF-8 at all; Python's JSON parser accepts both, and recurses until it fails on deeply nested
input. Numbers must be finite (``1e400`` reads as infinity, which no JSON column stores) and integers 64-bit (the
event layer's encoding fails on larger ones). These parsers (``DEFAULT_PARSER_CLASSES``) refuse such bodies with a
400 that names the field, before any view sees them, so nothing downstream meets an input it cannot store.
:func:`check_json_value` is the same check for a value from elsewhere (an agent's protocol message, a JSON field),
and :func:`query_param_problem` the one for query parameters.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings
from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.settings import api_settings
from rest_framework.utils import json as drf_json

#: Default of ``RUCKUS_MAX_JSON_DEPTH``: the deepest nesting of objects and arrays a request body may have.
DEFAULT_MAX_JSON_DEPTH = 32

#: Integers a body may hold: 64-bit (what the database's integers and the event layer's encoding carry).
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1

#: Tokens of JSON text that matter for its nesting: strings (skipped) and the structural characters.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]', re.DOTALL)


def max_json_depth() -> int:
    """The deepest nesting of objects and arrays accepted (``RUCKUS_MAX_JSON_DEPTH``)."""
    return int(getattr(settings, "RUCKUS_MAX_JSON_DEPTH", DEFAULT_MAX_JSON_DEPTH))


def depth_message(limit: int) -> str:
    """The error text for input nested deeper than ``limit`` levels."""
    return f"JSON nested deeper than {limit} levels"


def string_problem(value: str) -> str | None:
    r"""Why a string cannot be stored, or None.

    Args:
        value: The string.

    Returns:
        ``"contains a NUL character (\\u0000)"``, ``"contains a lone surrogate (\\udXXX)"`` or None.
    """
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(value[exc.start])
        return f"contains a lone surrogate (\\u{code:04x}), which is not valid Unicode text"
    return None


def printable(name: str) -> str:
    """A field name fit for an error message: NUL characters and lone surrogates written as escapes."""
    return name.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def _join(path: str, part: str | int) -> str:
    """``path.part`` (just ``part`` at the top)."""
    return f"{path}.{part}" if path else str(part)


def json_problem(
    value: Any, field: str = "", *, limit: int | None = None, contents: bool = True
) -> tuple[str, str] | None:
    """The first reason a decoded JSON value cannot be accepted, with the dotted path of the field.

    The walk is iterative: no input makes it recurse.

    Args:
        value: Decoded JSON (dicts, lists, strings, numbers, booleans, None).
        field: Dotted path of ``value`` itself (empty for a whole request body).
        limit: Deepest nesting allowed (default ``RUCKUS_MAX_JSON_DEPTH``); a top-level object is level 1.
        contents: Also check strings, keys and numbers (False: the nesting only, for what is never stored).

    Returns:
        ``(path, message)``, or None when the value is fine. For too deep a value, the path is the field at the
        top of the body (or ``field``) that holds the deep part.
    """
    limit = max_json_depth() if limit is None else limit
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        node, path, depth = stack.pop()
        if not contents and not isinstance(node, (dict, list)):
            continue
        if isinstance(node, str):
            problem = string_problem(node)
            if problem:
                return path or "body", problem
            continue
        if isinstance(node, float) and not math.isfinite(node):
            return path or "body", "number out of range (not a finite number)"
        if isinstance(node, int) and not isinstance(node, bool) and not MIN_INTEGER <= node <= MAX_INTEGER:
            return path or "body", f"number out of range (integers are between {MIN_INTEGER} and {MAX_INTEGER})"
        if not isinstance(node, (dict, list)):
            continue
        if depth + 1 > limit:
            # The field at the top of an object holds the deep part; a deep array is the body's problem.
            top = field or (path.split(".", 1)[0] if isinstance(value, dict) else "")
            return top or "body", depth_message(limit)
        items: Iterator[tuple[str | int, Any]] = iter(node.items()) if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if contents and isinstance(key, str):
                problem = string_problem(key)
                if problem:
                    return _join(path, printable(key)), f"key {problem}"
            stack.append((child, _join(path, key), depth + 1))
    return None


def check_json_value(value: Any, field: str = "", *, limit: int | None = None) -> Any:
    """Refuse a JSON value that cannot be stored (too deep, NUL characters, lone surrogates).

    Args:
        value: Decoded JSON.
        field: Dotted path of the value, used in the error (empty for a whole body).
        limit: Deepest nesting allowed (default ``RUCKUS_MAX_JSON_DEPTH``).

    Returns:
        ``value`` unchanged.

    Raises:
        ValidationError: A 400 naming the field: ``{"task.params.prompt": ["contains a NUL character ..."]}``.
    """
    found = json_problem(value, field, limit=limit)
    if found is not None:
        raise ValidationError({found[0]: [found[1]]})
    return value


class StorableJSONValidator:
    """Field validator (DRF or Django): the value is JSON that can be stored (see :func:`check_json_value`).

    The error names the problem; DRF puts it under the field's own name.
    """

    def __call__(self, value: Any) -> None:
        """Raise a validation error when the value cannot be stored."""
        found = json_problem(value)
        if found is not None:
            path, message = found
            raise ValidationError(message if path == "body" else f"{path}: {message}")


def _deep_key(text: str, limit: int) -> str | None:
    """The top-level key whose value nests deeper than ``limit`` in JSON text, when the body is an object.

    Used only when the parser itself gave up on the nesting (Python's recursion limit): a scan of the tokens.
    """
    depth = 0
    key: str | None = None
    last_string: str | None = None
    for match in _JSON_TOKENS.finditer(text):
        part = match.group()
        if part[0] == '"':
            last_string = part
        elif part == ":" and depth == 1 and last_string is not None:
            try:
                key = json.loads(last_string)
            except ValueError:
                key = None
        elif part in "[{":
            depth += 1
            if depth > limit:
                return key
        elif part in "]}":
            depth -= 1
    return key


def loads(text: str, *, strict_constants: bool = True, storable: bool = True) -> Any:
    """Parse JSON text into a value that can be stored.

    Args:
        text: The JSON document.
        strict_constants: Refuse ``NaN`` and ``Infinity`` (not JSON).
        storable: Check strings and numbers too (False: only the nesting, for a message that is never stored).

    Returns:
        The decoded value.

    Raises:
        ParseError: Malformed JSON, or nested beyond what the parser can follow (400).
        ValidationError: A value that cannot be stored, naming its field (400).
    """
    limit = max_json_depth()
    try:
        data = json.loads(text, parse_constant=drf_json.strict_constant if strict_constants else None)
    except RecursionError:
        key = _deep_key(text, limit)
        if key:
            raise ValidationError({key: [depth_message(limit)]}) from None
        raise ParseError(depth_message(limit)) from None
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from exc
    found = json_problem(data, limit=limit, contents=storable)
    if found is not None:
        if found[0] == "body":
            raise ParseError(found[1])
        raise ValidationError({found[0]: [found[1]]})
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing what cannot be stored (see the module) with a 400 naming the field."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
              ) -> Any:
        """Parse the body.

        Args:
            stream: The request body.
            media_type: The request's content type.
            parser_context: DRF's context (request encoding).

        Returns:
            The decoded body.
        """
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        return loads(text, strict_constants=api_settings.STRICT_JSON)


def _check_form(data: Any) -> Any:
    """Refuse NUL characters in form fields (form decoding already replaces invalid UTF-8)."""
    if isinstance(data, QueryDict):
        found = query_param_problem(data)
        if found is not None:
            raise ValidationError({found[0]: [found[1]]})
    return data


class FormParser(parsers.FormParser):
    """DRF's form parser, refusing NUL characters with a 400 naming the field."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
              ) -> Any:
        """Parse the body (see :class:`rest_framework.parsers.FormParser`)."""
        return _check_form(super().parse(stream, media_type, parser_context))


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, refusing NUL characters in its fields with a 400 naming the field."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
              ) -> Any:
        """Parse the body (see :class:`rest_framework.parsers.MultiPartParser`)."""
        result = super().parse(stream, media_type, parser_context)
        _check_form(result.data)
        return result


def query_param_problem(params: QueryDict) -> tuple[str, str] | None:
    """The first query parameter (or form field) that cannot be used, with the reason.

    NUL characters would otherwise reach SQL as errors; lone surrogates cannot occur (Django decodes with
    replacement) but are refused alike.

    Args:
        params: The request's query parameters or a form body.

    Returns:
        ``(name, message)`` or None.
    """
    for key, values in params.lists():
        problem = string_problem(key)
        if problem:
            return printable(key), f"name {problem}"
        for value in values:
            problem = string_problem(value) if isinstance(value, str) else None
            if problem:
                return key, problem
    return None
