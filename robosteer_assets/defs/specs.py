"""Run config generated from a stage's spec dataclass, and GPU steps launched with a spec.

``spec_config(SpecClass)`` returns a ``dg.Config`` subclass with one field per
dataclass field: same names, same defaults, same descriptions, ``Literal``
fields as Dagster enums, nested dataclasses as nested config, tuples as lists.
Its ``to_spec(**resolved)`` rebuilds the dataclass (``common.spec.from_jsonable``).
Fields named in ``resolved`` are left out of the run config: the asset fills
them (a path under the data root, a setting an upstream stage recorded).

``run_remote`` launches a domain step through dagster-pipes with the spec
serialised from its dataclass and the resolved paths; ``remote.run_step``
rebuilds the dataclass on the other side.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import typing
from typing import Any, ClassVar, Literal, Optional

import dagster as dg
from pydantic import Field, create_model

from robosteer_assets.common.spec import is_union, field_description, field_types, from_jsonable, to_jsonable

REMOTE = [sys.executable, "-m", "robosteer_assets.remote.run_step"]


class SpecConfig(dg.Config):
    """Run config generated from a spec dataclass (``spec_class``) by ``spec_config``."""

    spec_class: ClassVar[type | None] = None
    resolved_fields: ClassVar[tuple[str, ...]] = ()

    def to_spec(self, **resolved: Any):
        """The spec dataclass with this run config's values and the asset's ``resolved`` fields."""
        missing = set(self.resolved_fields) - set(resolved)
        if missing:
            raise TypeError(f"{type(self).__name__}.to_spec: expected values for the resolved fields "
                            f"{sorted(missing)}")
        cls = self.spec_class
        return from_jsonable(cls, {**self.model_dump(), **resolved}, cls.__name__)


def _config_type(tp: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return spec_config(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal or tp in (int, float, bool, str):
        return tp
    if is_union(tp):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(rest) == len(args):
            raise TypeError(f"{where}: run config supports X | None unions only, found {tp}")
        return Optional[_config_type(rest[0], where)]
    if origin is tuple:
        items = [args[0]] if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(set(items)) != 1:
            raise TypeError(f"{where}: run config supports tuples of one item type, found {tp}")
        return list[_config_type(items[0], where)]
    if origin is list:
        return list[_config_type(args[0], where)]
    if origin is dict and args and args[0] is str:
        return dict[str, _config_type(args[1], where)]
    raise TypeError(f"{where}: no run config type for annotation {tp}")


def _field(cls: type, f: dataclasses.Field, ctype: Any):
    description = field_description(cls, f.name)
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return Field(..., description=description)
    data = to_jsonable(value)
    if isinstance(ctype, type) and issubclass(ctype, SpecConfig):
        return Field(default_factory=lambda: ctype(**data), description=description)
    return Field(data, description=description)  # pydantic copies a list default per instance


@functools.lru_cache(maxsize=None)
def spec_config(cls: type, resolved: tuple[str, ...] = (), name: str | None = None) -> type[SpecConfig]:
    """A ``dg.Config`` subclass generated from the spec dataclass ``cls`` (see the module docstring)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"spec_config: expected a dataclass, found {cls!r}")
    types_ = field_types(cls)
    unknown = set(resolved) - set(types_)
    if unknown:
        raise TypeError(f"spec_config({cls.__name__}): resolved: expected field names among {list(types_)}, "
                        f"found {sorted(unknown)}")
    fields = {}
    for f in dataclasses.fields(cls):
        if f.name in resolved:
            continue
        ctype = _config_type(types_[f.name], f"{cls.__name__}.{f.name}")
        fields[f.name] = (ctype, _field(cls, f, ctype))
    model = create_model(name or cls.__name__, __base__=SpecConfig, __doc__=cls.__doc__, **fields)
    model.spec_class = cls
    model.resolved_fields = tuple(resolved)
    return model


def run_remote(context: dg.AssetExecutionContext, pipes: dg.PipesClient, step: str, spec: Any,
               **paths: str) -> dg.MaterializeResult:
    """Run the domain step ``step`` (``remote.run_step.STEPS``) through dagster-pipes with ``spec`` (its
    dataclass) and ``paths`` (resolved locations, as strings); the step's summary comes back as metadata."""
    extras = {"step": step, "spec": to_jsonable(spec), "paths": {k: str(v) for k, v in paths.items()}}
    return pipes.run(context=context, command=REMOTE, extras=extras).get_materialize_result()
