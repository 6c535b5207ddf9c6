"""A prediction request's body → validated records: the framework-free core of ``POST /``.

Strict JSON in, the instances it carries out (a batch, one object, or the legacy positional
array), each checked against the feature schema. Every fault is an
:class:`~titanic_mlops.api.http.ApiError` naming the field and the rule (400), or the 413
for too many instances.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from titanic_mlops import schema
from titanic_mlops.api.http import ApiError, invalid


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


_STRICT = json.JSONDecoder(parse_constant=_reject_constant)


def parse_json(body: bytes) -> Any:
    """Strict JSON (no NaN/Infinity), or a 400 naming the body.

    orjson parses (in C, strict); what it refuses is parsed again by the standard library,
    which accepts integers beyond 64 bits (then refused by the schema, naming the field) and
    words the error for the client.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return _STRICT.decode(body.decode())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise invalid("body", f"must be valid JSON ({str(exc)[:120]})") from None


def instances_of(payload: Any, max_instances: int) -> tuple[list[Any], bool]:
    """The instances a body carries, and whether they came as a batch (``instances``)."""
    if isinstance(payload, dict) and "instances" in payload:
        extra = sorted(set(payload) - {"instances"})
        if extra:
            raise invalid(extra[0], "is not allowed next to 'instances'")
        items = payload["instances"]
        if not isinstance(items, list):
            raise invalid("instances", "must be an array of instances")
        if not items:
            raise invalid("instances", "must contain at least 1 instance")
        if len(items) > max_instances:
            raise ApiError(
                413,
                "too_many_instances",
                f"instances: at most {max_instances} per request, got {len(items)}",
                "instances",
                f"must contain at most {max_instances} instances",
            )
        return items, True
    if isinstance(payload, dict | list):
        return [payload], False
    raise invalid("body", "must be an object, {'instances': [...]}, or a positional array")


def to_record(item: Any, index: int | None) -> dict[str, Any]:
    """Validate one instance (named object or legacy positional array) against the schema."""
    where = f"instances[{index}]" if index is not None else "body"
    if isinstance(item, list):
        if len(item) != len(schema.FEATURES):
            raise invalid(
                where,
                f"a positional instance must have {len(schema.FEATURES)} "
                f"values: [{', '.join(schema.FEATURES)}]",
            )
        item = dict(zip(schema.FEATURES, item, strict=True))
    elif not isinstance(item, dict):
        raise invalid(where, "must be an object with the passenger's features")
    try:
        return schema.check_record(item, index)
    except schema.SchemaError as exc:
        field = f"instances[{index}].{exc.field}" if index is not None else exc.field
        raise invalid(field, exc.rule) from None
