"""Declarative fields for the CRD dataclasses: one description drives parsing, dumping and the schema.

A CRD type is a frozen dataclass whose fields are declared with :func:`api_field`. The JSON name,
description, default, required-ness and :class:`~egw.model.checks.Check` of each field live in the
field's metadata, and three generic walkers use them:

* :func:`from_dict` — JSON-like dict → dataclass, collecting every :class:`FieldError` with its path;
* :func:`to_dict` — dataclass → JSON-like dict (``None`` and empty lists omitted);
* :func:`openapi` — dataclass → OpenAPI v3 structural schema with descriptions and CEL rules.

Cross-field rules are :class:`Rule` objects in a class-level ``RULES`` tuple: a CEL expression for the
API server and a Python predicate for us, written next to each other.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from egw.model.checks import Check
from egw.model.errors import FieldError, ValidationError

T = TypeVar("T")

_META = "egw"


@dataclass(frozen=True)
class FieldInfo:
    json: str
    description: str
    check: Check | None = None
    required: bool = False
    default: Any = None
    max_items: int | None = None
    preserve_unknown: bool = False


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: ``cel`` for the API server, ``holds`` for Python; both must agree."""

    cel: str
    message: str
    holds: Callable[[Any], bool]
    field_path: str = ""  # JSON path relative to the object the rule is attached to, e.g. ".publicIpPrefixId"


def api_field(
    json: str,
    description: str,
    *,
    check: Check | None = None,
    required: bool = False,
    default: Any = None,
    max_items: int | None = None,
    preserve_unknown: bool = False,
) -> Any:
    """Declare a dataclass field of a CRD type (see module docstring)."""
    info = FieldInfo(json, description, check, required, default, max_items, preserve_unknown)
    if isinstance(default, (list, dict)):
        raise TypeError("mutable defaults are not allowed; use tuples")
    return dataclasses.field(default=default, metadata={_META: info})


def _fields(cls: type) -> list[tuple[dataclasses.Field[Any], FieldInfo, Any]]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        info = f.metadata.get(_META)
        if info is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with api_field()")
        out.append((f, info, hints[f.name]))
    return out


def _unwrap_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ---------------------------------------------------------------------------------------------- parse


def from_dict(cls: type[T], data: Any, path: str = "", kind: str = "") -> T:
    """Parse ``data`` into ``cls``; raise one ValidationError listing every bad field."""
    errors: list[FieldError] = []
    obj = _parse_object(cls, data, path, errors)
    if errors or obj is None:
        raise ValidationError(errors or [FieldError(path, data, "must be an object")], kind)
    return typing.cast(T, obj)


def _parse_object(cls: type, data: Any, path: str, errors: list[FieldError]) -> Any:
    if not isinstance(data, dict):
        errors.append(FieldError(path, data, "must be an object"))
        return None
    before = len(errors)
    values: dict[str, Any] = {}
    for f, info, tp in _fields(cls):
        fpath = _join(path, info.json)
        if info.json not in data or data[info.json] is None:
            if info.required and info.default is None:
                errors.append(FieldError(fpath, None, "required field is missing"))
            values[f.name] = info.default
            continue
        values[f.name] = _parse_value(_unwrap_optional(tp), info, data[info.json], fpath, errors)
    if len(errors) > before:
        return None
    obj = cls(**values)
    for rule in getattr(cls, "RULES", ()):
        if not rule.holds(obj):
            rpath = path + rule.field_path if rule.field_path else path
            errors.append(FieldError(rpath, _value_at(data, rule.field_path), rule.message))
    return obj if len(errors) == before else None


def _value_at(data: dict[str, Any], field_path: str) -> Any:
    key = field_path.lstrip(".")
    return data.get(key) if key else "<object>"


def _parse_value(tp: Any, info: FieldInfo, value: Any, path: str, errors: list[FieldError]) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple:  # tuple[X, ...] is a JSON list
        item_tp = typing.get_args(tp)[0]
        if not isinstance(value, list):
            errors.append(FieldError(path, value, "must be a list"))
            return ()
        if info.max_items is not None and len(value) > info.max_items:
            errors.append(FieldError(path, f"<{len(value)} items>", f"must have at most {info.max_items} items"))
            return ()
        return tuple(_parse_value(item_tp, info, v, f"{path}[{i}]", errors) for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            errors.append(FieldError(path, value, "must be an object"))
            return None
        return types.MappingProxyType(dict(value))
    if dataclasses.is_dataclass(tp):
        return _parse_object(typing.cast(type, tp), value, path, errors)
    if tp is bool:
        if not isinstance(value, bool):
            errors.append(FieldError(path, value, "must be a boolean"))
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(FieldError(path, value, "must be an integer"))
            return value
    elif tp is str and not isinstance(value, str):
        errors.append(FieldError(path, value, "must be a string", bool(info.check and info.check.secret)))
        return value
    if info.check is not None:
        why = info.check.reason(value)
        if why is not None:
            errors.append(FieldError(path, value, why, info.check.secret))
    return value


# ----------------------------------------------------------------------------------------------- dump


def to_dict(obj: Any) -> dict[str, Any]:
    """Dump a CRD dataclass to its JSON form; None values and empty lists are omitted."""
    out: dict[str, Any] = {}
    for f, info, _tp in _fields(type(obj)):
        value = _dump_value(getattr(obj, f.name))
        if value is None or value == []:
            continue
        out[info.json] = value
    return out


def _dump_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple):
        return [_dump_value(v) for v in value]
    if isinstance(value, types.MappingProxyType):
        return dict(value)
    return value


# --------------------------------------------------------------------------------------------- schema


def openapi(cls: type, description: str = "") -> dict[str, Any]:
    """OpenAPI v3 structural schema of a CRD dataclass (descriptions, checks, defaults, CEL rules)."""
    props: dict[str, Any] = {}
    required: list[str] = []
    for _f, info, tp in _fields(cls):
        props[info.json] = _schema_of(_unwrap_optional(tp), info)
        if info.required:
            required.append(info.json)
    schema: dict[str, Any] = {"type": "object"}
    if description or cls.__doc__:
        schema["description"] = description or _clean_doc(cls.__doc__ or "")
    schema["properties"] = props
    if required:
        schema["required"] = required
    rules = getattr(cls, "RULES", ())
    if rules:
        schema["x-kubernetes-validations"] = [_rule_schema(r) for r in rules]
    return schema


def _rule_schema(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": rule.cel, "message": rule.message}
    if rule.field_path:
        out["fieldPath"] = rule.field_path
    return out


def _clean_doc(doc: str) -> str:
    return " ".join(doc.split())


def _schema_of(tp: Any, info: FieldInfo) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin is tuple:
        item = _schema_of(typing.get_args(tp)[0], dataclasses.replace(info, default=None))
        item.pop("description", None)
        schema: dict[str, Any] = {"type": "array", "description": info.description, "items": item}
        if info.max_items is not None:
            schema["maxItems"] = info.max_items
        return schema
    if origin is dict or tp is dict:
        schema = {"type": "object", "description": info.description}
        if info.preserve_unknown:
            schema["x-kubernetes-preserve-unknown-fields"] = True
        return schema
    if dataclasses.is_dataclass(tp):
        schema = openapi(typing.cast(type, tp))
        schema["description"] = info.description
        return schema
    if info.check is not None:
        schema = {"description": info.description, **_deep_copy(info.check.schema)}
    elif tp is bool:
        schema = {"type": "boolean", "description": info.description}
    elif tp is int:
        schema = {"type": "integer", "format": "int32", "description": info.description}
    else:
        schema = {"type": "string", "description": info.description}
    if info.default is not None:
        schema["default"] = info.default
    return schema


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
