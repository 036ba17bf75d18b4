"""Pydantic models in the OpenAPI schema, and the response shapes of the agents API.

Responses whose JSON is built from Pydantic models or plain dicts (agent capabilities, plans, results, the
catalog) are described by Pydantic models, so that the schema, and through it the web UI's generated types,
names every field. drf-spectacular turns a model into its JSON Schema; :class:`PydanticComponent` makes that
schema valid OpenAPI 3.0 and gives status enumerations the component names the serializers' choice fields
get (``JobStatusEnum`` ...), so both kinds of response share one type per status vocabulary.

This module lives in the lowest Django app (``core``) so that every app above may describe its responses with it.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, get_args

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent, build_choice_description_list, deep_import_string
from drf_spectacular.settings import spectacular_settings
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import model_json_schema
from rest_framework import serializers
from typing_extensions import get_type_hints, is_typeddict

#: Prefix of component references in the schema.
REF_PREFIX = "#/components/schemas/"


class ResponseShape(BaseModel):
    """Base of the API's response shapes: a key the shape does not name is an error (tests catch drift)."""

    model_config = ConfigDict(extra="forbid")


def _override_choices(value: Any) -> list[tuple[str, str]]:
    """``(value, label)`` pairs of one ``ENUM_NAME_OVERRIDES`` entry, resolved the way spectacular does."""
    if isinstance(value, str):
        value = deep_import_string(value)
    if isinstance(value, type) and issubclass(value, Enum):
        value = getattr(value, "choices", None) or [(member.value, member.name) for member in value]
    if callable(value):
        value = value()
    pairs = []
    for choice in value or ():
        pair = tuple(choice) if isinstance(choice, (tuple, list)) else (choice, choice)
        pairs.append((str(pair[0]), str(pair[1])))
    return pairs


def _status_enums() -> dict[frozenset[str], tuple[str, list[tuple[str, str]]]]:
    """Value set -> (component name, choices) of every enumeration named in ``ENUM_NAME_OVERRIDES``."""
    found: dict[frozenset[str], tuple[str, list[tuple[str, str]]]] = {}
    for name, value in spectacular_settings.ENUM_NAME_OVERRIDES.items():
        choices = _override_choices(value)
        if choices:
            found[frozenset(v for v, _ in choices)] = (name, choices)
    return found


def _enum_component(choices: list[tuple[str, str]]) -> dict[str, Any]:
    """The schema spectacular gives a choice field's enumeration component."""
    return {
        "enum": [value for value, _ in choices],
        "type": "string",
        "description": build_choice_description_list(choices),
    }


class _OpenApi30:
    """Rewrites a Pydantic (JSON Schema 2020-12) schema into OpenAPI 3.0, renaming references on the way."""

    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames

    def schema(self, node: Any) -> Any:
        """Convert one schema object (and everything below it)."""
        if not isinstance(node, dict):
            return node
        node = dict(node)
        node.pop("title", None)
        for key in ("anyOf", "oneOf"):
            if {"type": "null"} in node.get(key, ()):
                return self.schema(self._nullable(node, key))
        if "$ref" in node:
            ref = node.pop("$ref")
            name = ref.removeprefix(REF_PREFIX)
            ref = {"$ref": REF_PREFIX + self.renames.get(name, name)}
            node = {k: self._keyword(k, v) for k, v in node.items()}
            return {"allOf": [ref], **node} if node else ref
        if "const" in node:
            node["enum"] = [node.pop("const")]
        if "prefixItems" in node:
            items = [self.schema(item) for item in node.pop("prefixItems")]
            node["items"] = items[0] if all(item == items[0] for item in items) else {"anyOf": items}
        for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(node.get(bound), (int, float)) and not isinstance(node[bound], bool):
                node[inclusive] = node[bound]
                node[bound] = True
        if "examples" in node:
            examples = node.pop("examples")
            if examples:
                node["example"] = examples[0]
        return {k: self._keyword(k, v) for k, v in node.items()}

    def _keyword(self, key: str, value: Any) -> Any:
        """Convert the schemas under one keyword (property names and plain values are kept as they are)."""
        if key in ("properties", "patternProperties"):
            return {name: self.schema(sub) for name, sub in value.items()}
        if key in ("items", "additionalProperties", "not"):
            return self.schema(value) if isinstance(value, dict) else value
        if key in ("anyOf", "oneOf", "allOf"):
            return [self.schema(sub) for sub in value]
        return value

    @staticmethod
    def _nullable(node: dict[str, Any], key: str) -> dict[str, Any]:
        """``anyOf: [X, {type: null}]`` becomes ``X`` with ``nullable: true`` (not converted yet)."""
        rest = [o for o in node.pop(key) if o != {"type": "null"}]
        node["nullable"] = True
        if len(rest) == 1:
            only = rest[0]
            if "$ref" in only:
                node["allOf"] = [only]
            else:
                node = {**only, **node}
        else:
            node[key] = rest
        return node


def referenced_types(model: type[BaseModel]) -> dict[str, type]:
    """Every model and enumeration a model's fields refer to (at any depth), by class name.

    Args:
        model: The model.

    Returns:
        Class name -> class: the identities of the components its schema refers to.
    """
    found: dict[str, type] = {}
    pending: list[Any] = [field.annotation for field in model.model_fields.values()]
    while pending:
        hint = pending.pop()
        pending.extend(get_args(hint))
        if not isinstance(hint, type) or hint.__name__ in found:
            continue
        if is_typeddict(hint):
            found[hint.__name__] = hint
            pending.extend(get_type_hints(hint).values())
        elif issubclass(hint, (BaseModel, Enum)):
            found[hint.__name__] = hint
            if issubclass(hint, BaseModel):
                pending.extend(field.annotation for field in hint.model_fields.values())
    return found


def openapi_schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """OpenAPI 3.0 schema of a Pydantic model and of every component it refers to.

    Status enumerations become references to the components their choice fields get
    (``ENUM_NAME_OVERRIDES``); other enumerations and nested models keep their class names.

    Args:
        model: The model (its serialized form: what a response carries).

    Returns:
        ``(schema, components)``: the model's schema and each referenced component's schema by name.
    """
    raw = model_json_schema(model, ref_template=REF_PREFIX + "{model}", mode="serialization")
    definitions: dict[str, Any] = raw.pop("$defs", {})
    statuses = _status_enums()
    renames: dict[str, str] = {}
    components: dict[str, dict[str, Any]] = {}
    for name, sub in definitions.items():
        status = statuses.get(frozenset(sub.get("enum", ()))) if "enum" in sub else None
        if status is not None:
            renames[name] = status[0]
            components[status[0]] = _enum_component(status[1])
    convert = _OpenApi30(renames)
    for name, sub in definitions.items():
        if name not in renames:
            components[name] = convert.schema(sub)
    return convert.schema(raw), components


class PydanticComponent(OpenApiSerializerExtension):
    """Describes a Pydantic model given to ``extend_schema`` (or inside a field) as an OpenAPI 3.0 component.

    The schema is the model's serialized form, in both directions, so a nested model is one component.
    """

    target_class = "pydantic.BaseModel"
    match_subclasses = True
    priority = 1

    def get_name(self, auto_schema: Any, direction: str) -> str:
        """The model's class name."""
        return self.target.__name__

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        """The model's schema; the components it refers to are registered on the way."""
        schema, components = openapi_schema(self.target)
        identities = referenced_types(self.target)
        for name, sub in components.items():
            # A component's identity is its class, so two different classes of one name are reported.
            identity = identities.get(name, name)
            auto_schema.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=identity, schema=sub)
            )
        return schema


class ModelJSONField(serializers.JSONField):
    """A read-only JSON column shown as stored, described in the schema by a Pydantic model.

    Args:
        model: The model describing the stored JSON.
        **kwargs: Field options (``source``, ``allow_null`` ...).
    """

    def __init__(self, model: type[BaseModel], **kwargs: Any) -> None:
        self.model = model
        kwargs["read_only"] = True
        super().__init__(**kwargs)


class ModelJSONFieldSchema(OpenApiSerializerFieldExtension):
    """A :class:`ModelJSONField` is a reference to its model's component."""

    target_class = ModelJSONField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        """Reference the model's component (as responses show it: the field is read-only)."""
        return auto_schema.resolve_serializer(self.target.model, "response").ref
