"""The error answers every operation may give, written into the OpenAPI schema once.

DRF answers a refused request in two shapes: ``{"detail": "..."}`` (authentication, permission, not found, a
conflict, a failed call to an agent) and ``{"field": ["message", ...], ...}`` (validation, with dotted paths for
nested fields). Views declare their successful answers and the errors particular to them (409, 502 ...); the
postprocessing hook :func:`add_error_responses` (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``) adds the
common ones to each operation that can give them, so that clients and schema-driven tests know every status:

- 400 (validation errors) where the operation takes a body or query parameters;
- 401 where it accepts credentials, 403 everywhere (permissions, a CSRF refusal of a session request);
- 404 where the path names an object.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

#: Component names of the two error shapes.
ERROR_COMPONENT = "Error"
VALIDATION_ERROR_COMPONENT = "ValidationErrors"

_METHODS = ("get", "put", "post", "patch", "delete")


# Views declare their particular error answers with it: extend_schema(responses={409: ErrorSerializer}).
class ErrorSerializer(serializers.Serializer):
    """Why the request was refused."""

    detail = serializers.CharField()

    class Meta:
        ref_name = ERROR_COMPONENT


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Why the request was refused.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    }


def _validation_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            'What is wrong with the request: {"field": ["message", ...]} per bad field (dotted paths for nested '
            'fields, "non_field_errors" for the whole input), or {"detail": "..."} when the body cannot be read.'
        ),
        "additionalProperties": {},
    }


def _response(component: str, description: str) -> dict[str, Any]:
    return {
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
        "description": description,
    }


def _accepts_credentials(operation: dict[str, Any]) -> bool:
    """Whether any security requirement of the operation names a scheme (``{}`` alone is anonymous)."""
    return any(requirement for requirement in operation.get("security", [{}]))


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: declare the common error answers of every operation (see the module).

    Args:
        result: The generated schema.
        generator: drf-spectacular's generator (unused).
        request: The schema request (unused).
        public: Whether the schema is the public one (unused).

    Returns:
        The schema with the error components and responses added; answers a view declared are kept.
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(ERROR_COMPONENT, _error_schema())
    schemas[VALIDATION_ERROR_COMPONENT] = _validation_schema()
    for path, item in result.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            wanted: dict[str, dict[str, Any]] = {}
            if "requestBody" in operation or any(p.get("in") == "query" for p in operation.get("parameters", [])):
                wanted["400"] = _response(VALIDATION_ERROR_COMPONENT, "Invalid input (each bad field named)")
            if _accepts_credentials(operation):
                wanted["401"] = _response(ERROR_COMPONENT, "No or invalid credentials")
            wanted["403"] = _response(ERROR_COMPONENT, "Not allowed")
            if "{" in path:
                wanted["404"] = _response(ERROR_COMPONENT, "No such object")
            for status, response in wanted.items():
                responses.setdefault(status, response)
            operation["responses"] = dict(sorted(responses.items()))
    return result
