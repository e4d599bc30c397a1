"""Every field of every asset's run config reaches the domain step.

For each asset with run config: set every field to a value other than its default
(generated from the stage's spec dataclass), materialize the asset with its domain
step replaced by a function that records the spec it receives and stops the run,
and compare that spec with the one the run config describes, field by field.
Steps launched through dagster-pipes go through the real extras: JSON, then
``remote.run_step.call_step``, which rebuilds the dataclass.

The selection probe runs the real ``head_scores`` first with a non-default k-NN
config (Euclidean metric included) and checks that selection receives exactly
that config.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import logging
import pkgutil
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import dagster as dg
import pytest

from robosteer_assets.common.spec import is_union, field_types, from_jsonable, to_jsonable
from robosteer_assets.definitions import defs
import robosteer_assets.defs as defs_package
from robosteer_assets.defs import embedded, ingest, steering
from robosteer_assets.defs.resources import BaseModel, ProjectPaths
from robosteer_assets.defs.specs import SpecConfig
from robosteer_assets.evaluation import evaluator
from robosteer_assets.remote import run_step as remote
from robosteer_assets.steering import activations as activations_mod
from robosteer_assets.embedded import base_policy as base_policy_mod
from robosteer_assets.steering import overlap as overlap_mod
from robosteer_assets.training import trainer as trainer_mod

TASK = "pick_cube"
class Captured(Exception):
    """Raised by a capturing domain step: the spec is recorded, the run stops here."""


# ----------------------------------------------------------------------------- non-default values

def non_default(tp: Any, value: Any, where: str, overrides: dict) -> Any:
    """A JSON-able value of type ``tp`` that differs from ``value`` (recursively for dataclasses)."""
    if where in overrides:
        return overrides[where]
    if dataclasses.is_dataclass(tp):
        return {f: non_default(t, getattr(value, f), f"{where}.{f}" if where else f, overrides)
                for f, t in field_types(tp).items()}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return next(a for a in args if a != value)
    if is_union(tp):
        inner = next(a for a in args if a is not type(None))
        base = {int: 6, float: 2.5, str: "x"}.get(inner)
        if value is None:
            return non_default(inner, base, where, overrides) if base is not None else _fresh(inner, where)
        return non_default(inner, value, where, overrides)
    if tp is bool:
        return not value
    if tp is int:
        return value + 3
    if tp is float:
        return value + 0.25
    if tp is str:
        return f"{value}_x"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = args[0]
            if item is int:
                return [v + 1 for v in value] if value else [2, 3]
            if item is str:
                return [f"{v}_x" for v in value] if value else ["other_task"]
            return _fresh(tp, where)
        return [non_default(a, v, f"{where}[{i}]", overrides) for i, (a, v) in enumerate(zip(args, value))]
    raise TypeError(f"{where}: no non-default value for {tp}")


def _fresh(tp: Any, where: str) -> Any:
    if typing.get_origin(tp) is tuple and typing.get_args(tp)[0] == tuple[int, int]:
        return [[0, 1], [1, 2]]
    raise TypeError(f"{where}: no non-default value for {tp}")


def differing_fields(a: Any, b: Any, where: str = "") -> list[str]:
    """Dotted names of the leaf fields where two spec dataclasses differ."""
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        out = []
        for f in dataclasses.fields(a):
            out += differing_fields(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}" if where else f.name)
        return out
    return [] if a == b else [where]


def leaf_fields(obj: Any, where: str = "") -> list[str]:
    if dataclasses.is_dataclass(obj):
        out = []
        for f in dataclasses.fields(obj):
            out += leaf_fields(getattr(obj, f.name), f"{where}.{f.name}" if where else f.name)
        return out
    return [where]


# ----------------------------------------------------------------------------- capturing

class PipesThroughAdapter(dg.PipesSubprocessClient):
    """Sends the extras through JSON and ``remote.run_step.call_step`` in this process."""

    def run(self, *, context, command, extras=None, **kwargs):
        extras = json.loads(json.dumps(extras))
        remote.call_step(extras["step"], extras["spec"], extras.get("paths", {}), logging.getLogger("test"))
        raise AssertionError(f"step {extras['step']!r} was expected to be captured")


@dataclass
class Probe:
    target: tuple[Any, str]  # (module, name) of the domain step the asset calls
    spec_of: Callable[[tuple, dict], Any] = lambda args, kwargs: args[0]
    overrides: dict = dataclasses.field(default_factory=dict)  # field -> value where "any other" is invalid
    variants: tuple[dict, ...] = ({},)  # extra overrides: one run each (fields that constrain each other)
    resolved: Callable[[ProjectPaths, dict], dict] = lambda paths, run_config: {}
    setup: Callable[[ProjectPaths], None] = lambda paths: None
    upstream: tuple = ()  # assets materialized for real in the same run, with non-default config
    fixed: tuple[str, ...] = ()  # fields the asset itself sets, to their default value for this asset


def _activation_store(path: Path) -> None:
    """A small complete activation store in the layout ``steering.activations`` writes."""
    from robosteer_assets.steering.activations import write_random_store

    write_random_store(path, episodes=4, steps=30, layers=2, heads=2, dim=4)


def _steering_inputs(paths: ProjectPaths) -> None:
    paths.steering(TASK).mkdir(parents=True)
    _activation_store(paths.steering(TASK) / steering.ACTIVATIONS)


# string fields the domain validates: another valid value
_FINETUNE_VALUES = {"norm_stats": "demos", "full_lora_init_b": "zeros", "augment": "color"}


def _state_dir(paths: ProjectPaths, method: str) -> str:
    from robosteer_assets.training.trainer import default_state_dir

    return str(default_state_dir(paths.checkpoints(TASK, method)))


def _eval_probe() -> Probe:
    return Probe(target=(evaluator, "run_step"),
                 resolved=lambda paths, rc: {"video_dir": str(paths.root() / "videos")})


PROBES: dict[str, Probe] = {
    "raw_episodes": Probe(target=(ingest, "ingest_task"), spec_of=lambda a, kw: a[2],
                          # ReadConfig types these as str and validates them
                          overrides={"read.exterior": "right", "read.joint_velocity_resample": "select"},
                          setup=lambda paths: paths.task_demos(TASK).mkdir(parents=True)),
    "keyframes": Probe(target=(ingest, "keyframe_task")),
    "head_activations": Probe(target=(activations_mod, "run_step")),
    "head_scores": Probe(target=(steering, "score_task"), setup=_steering_inputs),
    "selected_heads": Probe(
        target=(steering, "select_task_heads"), setup=_steering_inputs, upstream=("head_scores",),
        # multi-task selection is k-NN selection: one run varies multitask, one the selector
        variants=({"selector": "knn"}, {"multitask": "none"}),
        # the k-NN regression head_scores ran with, metric included
        resolved=lambda paths, rc: {"knn": from_jsonable(_spec_class("head_scores"), rc["head_scores"]["config"])}),
    "head_overlap": Probe(target=(overlap_mod, "overlap_report")),
    "eval_trials/zero_shot": _eval_probe(),
    "eval_trials/full_lora": _eval_probe(),
    "eval_trials/steering": _eval_probe(),
    "sim_demos": Probe(target=(embedded, "record_task_demos")),
    "steering_checkpoint": Probe(
        target=(trainer_mod, "run_step"), fixed=("method", "object_aux_weight"), overrides=_FINETUNE_VALUES,
        resolved=lambda paths, rc: {"method": "steering", "train_state_dir": _state_dir(paths, "steering"),
                                    "object_aux_weight": 0.0}),
    "full_lora_checkpoint": Probe(
        target=(trainer_mod, "run_step"), fixed=("object_aux_weight",), overrides=_FINETUNE_VALUES,
        resolved=lambda paths, rc: {"method": "full_lora", "train_state_dir": _state_dir(paths, "full_lora"),
                                    "object_aux_weight": 0.0}),
    # rebuild=True (the non-default) pretrains through the pipes step
    "base_policy": Probe(target=(base_policy_mod, "run_step"),
                         overrides={"augment": "openpi", "corpus.task_episodes": {"push_cup": 10}}),
}

# the asset definitions as the modules of robosteer_assets.defs declare them (the repository's copies
# have resources bound)
ASSETS = {a.key.to_user_string(): a
          for info in pkgutil.iter_modules(defs_package.__path__)
          for a in vars(importlib.import_module(f"{defs_package.__name__}.{info.name}")).values()
          if isinstance(a, dg.AssetsDefinition)}


def _config_class(name: str) -> type | None:
    fn = ASSETS[name].op.compute_fn.decorated_fn
    return typing.get_type_hints(fn).get("config")


def _spec_class(name: str) -> type:
    return _config_class(name).spec_class


def _non_default_config(name: str, probe: Probe, variant: dict) -> dict:
    cls = _config_class(name)
    spec = cls.spec_class()
    overrides = {**probe.overrides, **variant}
    return {f: non_default(t, getattr(spec, f), f, overrides)
            for f, t in field_types(cls.spec_class).items() if f not in cls.resolved_fields}


def test_every_asset_with_run_config_has_a_probe():
    repo_keys = {k.to_user_string() for k, a in defs.get_repository_def().assets_defs_by_key.items()
                 if a.is_materializable}
    assert set(ASSETS) == repo_keys, f"assets outside the modules walked here: {sorted(repo_keys - set(ASSETS))}"
    configured = {name for name in ASSETS if _config_class(name) is not None}
    assert configured == set(PROBES), (
        f"assets with run config and no wiring probe (add one to PROBES): {sorted(configured - set(PROBES))}")
    for name in PROBES:
        assert issubclass(_config_class(name), SpecConfig), f"{name}: run config is not generated from a spec"


@pytest.mark.parametrize("name", sorted(PROBES))
def test_every_config_field_reaches_the_domain_step(name, tmp_path, monkeypatch):
    probe = PROBES[name]
    module, attr = probe.target
    original = getattr(module, attr)
    captured: list = []

    @functools.wraps(original)
    def capture(*args, **kwargs):
        captured.append(probe.spec_of(args, kwargs))
        raise Captured(name)

    monkeypatch.setattr(module, attr, capture)
    spec_cls = _spec_class(name)
    default = spec_cls()
    covered: set[str] = set()
    for i, variant in enumerate(probe.variants):
        paths = ProjectPaths(data_root=str(tmp_path / f"data{i}"))
        probe.setup(paths)
        run_config = {n: {"config": _non_default_config(n, PROBES[n], {})} for n in probe.upstream}
        run_config[name.replace("/", "__")] = {"config": _non_default_config(name, probe, variant)}
        selected = [ASSETS[n] for n in (*probe.upstream, name)]
        captured.clear()
        with dg.instance_for_test() as inst:
            inst.add_dynamic_partitions("task", [TASK])
            res = dg.materialize(selected, partition_key=TASK if ASSETS[name].partitions_def else None,
                                 instance=inst, raise_on_error=False, run_config={"ops": run_config},
                                 resources={"paths": paths, "base_model": BaseModel(),
                                            "gpu_pipes": PipesThroughAdapter()})
        failures = [e for e in res.all_events if e.is_step_failure]
        assert len(captured) == 1, (f"{name}: expected the domain step {attr} to be called once, it was called "
                                    f"{len(captured)} times; step failures: "
                                    f"{[e.step_failure_data.error.message for e in failures]}")
        got = captured[0]
        expected = from_jsonable(spec_cls, {**run_config[name.replace('/', '__')]["config"],
                                            **probe.resolved(paths, run_config)})
        wrong = differing_fields(got, expected)
        assert not wrong, (f"{name}: these fields did not reach {attr} as configured: "
                           + "; ".join(f"{w}: expected {_get(expected, w)!r}, got {_get(got, w)!r}" for w in wrong))
        covered |= set(differing_fields(got, default))
    never_changed = set(leaf_fields(default)) - covered - set(probe.fixed)
    assert not never_changed, f"{name}: the probe never set these fields to a non-default value: {sorted(never_changed)}"


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
