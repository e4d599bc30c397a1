"""Stage specs as plain JSON and back.

Every stage of the pipeline is configured by one frozen dataclass in its domain
module (``droid.store.IngestConfig``, ``steering.knn.KnnConfig``, ...). This
module converts such a spec to JSON-able data (``to_jsonable``) and rebuilds it
from that data with the dataclass's own type annotations (``from_jsonable``):
nested dataclasses, ``tuple[X, ...]`` and fixed-length tuples, ``list``,
``dict``, ``Literal``, ``X | None`` and the scalar types. It is what carries a
spec across a process boundary (dagster-pipes extras, run config, a JSON file
beside an artifact) without a hand-written parser per stage.

``field_description`` reads a field's description from
``field(metadata={"description": ...})`` or, failing that, from a
``name: text`` line of the class docstring, so the Dagster UI and the README can
show it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from pathlib import PurePath
from typing import Any, Literal, Union


class SpecError(ValueError):
    """Data that does not fit a spec's type: ``where`` names the field (``read.image_size``)."""

    def __init__(self, where: str, expected: str, found: Any):
        super().__init__(f"{where}: expected {expected}, found {found!r}")
        self.where, self.expected, self.found = where, expected, found

    def __reduce__(self):
        return (type(self), (self.where, self.expected, self.found))


def to_jsonable(value: Any) -> Any:
    """A dataclass (recursively), tuple, list, dict or path as JSON-able data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, PurePath):
        return str(value)
    return value


@functools.lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each dataclass field (``from __future__ import annotations`` included)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def is_union(tp) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _type_name(tp) -> str:
    if tp is type(None):
        return "None"
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if is_union(tp):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        return f"a {tp.__name__} mapping"
    return getattr(tp, "__name__", None) or str(tp)


def from_jsonable(tp: Any, data: Any, where: str = "") -> Any:
    """Rebuild a value of type ``tp`` (a spec dataclass, or any annotation it uses) from JSON-able
    ``data``. Missing dataclass fields take their defaults; unknown ones, wrong types and values
    outside a ``Literal`` raise ``SpecError`` naming the field. An instance of a dataclass ``tp`` is
    returned as it is."""
    where = where or getattr(tp, "__name__", "spec")
    if tp is Any:
        return data
    if dataclasses.is_dataclass(tp):
        if isinstance(data, tp):
            return data
        if not isinstance(data, dict):
            raise SpecError(where, _type_name(tp), data)
        types_ = field_types(tp)
        unknown = sorted(set(data) - set(types_))
        if unknown:
            raise SpecError(where, f"fields of {tp.__name__} ({', '.join(types_)})", f"unknown {unknown}")
        kw = {k: from_jsonable(types_[k], v, f"{where}.{k}") for k, v in data.items()}
        return tp(**kw)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        if not any(type(data) is type(a) and data == a for a in args):
            raise SpecError(where, _type_name(tp), data)
        return data
    if is_union(tp):
        if data is None:
            if type(None) in args:
                return None
            raise SpecError(where, _type_name(tp), data)
        for a in args:
            if a is type(None):
                continue
            try:
                return from_jsonable(a, data, where)
            except SpecError:
                pass
        raise SpecError(where, _type_name(tp), data)
    if origin is tuple:
        if not isinstance(data, (list, tuple)):
            raise SpecError(where, f"a list for {tp}", data)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        if len(data) != len(args):
            raise SpecError(where, f"{len(args)} items ({tp})", data)
        return tuple(from_jsonable(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data)))
    if origin is list:
        if not isinstance(data, (list, tuple)):
            raise SpecError(where, f"a list for {tp}", data)
        return [from_jsonable(args[0] if args else Any, v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise SpecError(where, f"a mapping for {tp}", data)
        kt, vt = args if args else (Any, Any)
        return {from_jsonable(kt, k, f"{where} key"): from_jsonable(vt, v, f"{where}[{k!r}]") for k, v in data.items()}
    if tp is bool:
        if not isinstance(data, bool):
            raise SpecError(where, "true or false", data)
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise SpecError(where, "an integer", data)
        return data
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise SpecError(where, "a number", data)
        return float(data)
    if tp is str:
        if not isinstance(data, str):
            raise SpecError(where, "a string", data)
        return data
    if isinstance(tp, type):
        if not isinstance(data, tp):
            raise SpecError(where, _type_name(tp), data)
        return data
    raise SpecError(where, f"a value of a type specs support (found annotation {tp})", data)


def _docstring_descriptions(cls: type) -> dict[str, str]:
    """``name: text`` lines (with indented continuation lines) of a class docstring."""
    doc = cls.__doc__ or ""
    out: dict[str, str] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    current, indent = None, 0
    for line in doc.splitlines():
        m = re.match(r"^(\s*)(\w+):\s+(.*)$", line)
        if m and m.group(2) in names:
            current, indent = m.group(2), len(m.group(1))
            out[current] = m.group(3).strip()
        elif current and line.strip() and len(line) - len(line.lstrip()) > indent:
            out[current] += " " + line.strip()
        else:
            current = None
    return out


def field_description(cls: type, name: str) -> str | None:
    """The description of field ``name`` of dataclass ``cls`` (metadata first, then the docstring)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return f.metadata.get("description") or _docstring_descriptions(cls).get(name)
