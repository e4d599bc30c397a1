"""Stage specs: JSON round trips (common.spec), the generated run config (defs.specs) and the
dagster-pipes adapter that rebuilds a spec (remote.run_step.call_step)."""

import json
import logging
from dataclasses import dataclass, field
from typing import Literal

import dagster as dg
import pytest

from robosteer_assets.common.spec import SpecError, field_description, from_jsonable, to_jsonable
from robosteer_assets.defs import config as C
from robosteer_assets.defs.specs import SpecConfig, spec_config
from robosteer_assets.remote import run_step as remote


@dataclass(frozen=True)
class Inner:
    """An inner spec.

    rate: a rate in Hz, or None
        for the recorded one.
    """

    rate: float | None = 6.0
    pair: tuple[float, float] = (0.1, 0.2)


@dataclass(frozen=True)
class Outer:
    kind: Literal["a", "b"] = field(default="a", metadata={"description": "which kind"})
    ks: tuple[int, ...] = (1, 2)
    cells: tuple[tuple[int, int], ...] | None = None
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


OuterConfig = spec_config(Outer)


@dg.asset
def probe(config: OuterConfig):
    return config.to_spec()


SPECS = [s.spec_class for s in (C.IngestConfig, C.KeyframesConfig, C.ActivationsConfig, C.HeadScoresConfig,
                                C.SelectionConfig, C.OverlapConfig, C.EvalConfig, C.SimDemosConfig)]


@pytest.mark.parametrize("cls", SPECS + [Outer], ids=lambda c: c.__name__)
def test_every_spec_round_trips_through_json(cls):
    spec = cls()
    assert from_jsonable(cls, json.loads(json.dumps(to_jsonable(spec)))) == spec


def test_nested_tuples_literals_and_optionals_are_rebuilt():
    data = {"kind": "b", "ks": [3], "cells": [[0, 1], [2, 3]], "inner": {"rate": None, "pair": [1, 2]}}
    assert from_jsonable(Outer, data) == Outer(kind="b", ks=(3,), cells=((0, 1), (2, 3)),
                                               inner=Inner(rate=None, pair=(1.0, 2.0)))


@pytest.mark.parametrize("data, where, expected", [
    ({"kind": "c"}, "Outer.kind", "one of 'a', 'b'"),
    ({"inner": {"rate": "fast"}}, "Outer.inner.rate", "float or None"),
    ({"ks": [1, "2"]}, "Outer.ks[1]", "an integer"),
    ({"flag": 1}, "Outer.flag", "true or false"),
    ({"inner": {"pair": [1]}}, "Outer.inner.pair", "2 items"),
    ({"colour": "red"}, "Outer", "fields of Outer (kind, ks, cells, inner, flag)"),
])
def test_errors_name_the_field_and_what_was_expected(data, where, expected):
    with pytest.raises(SpecError) as e:
        from_jsonable(Outer, data)
    assert e.value.where == where and expected in str(e.value), str(e.value)


def test_descriptions_come_from_metadata_or_the_docstring():
    assert field_description(Outer, "kind") == "which kind"
    assert field_description(Inner, "rate") == "a rate in Hz, or None for the recorded one."
    assert field_description(Outer, "flag") is None


def test_generated_config_has_the_spec_defaults_types_and_descriptions():
    cfg_cls = OuterConfig
    assert spec_config(Outer) is OuterConfig
    assert issubclass(cfg_cls, dg.Config) and issubclass(cfg_cls, SpecConfig)
    assert cfg_cls().to_spec() == Outer()
    got = cfg_cls(kind="b", ks=[5, 6], inner={"rate": None}).to_spec()
    assert got == Outer(kind="b", ks=(5, 6), inner=Inner(rate=None))

    fields = (dg.Definitions(assets=[probe]).get_repository_def().get_all_jobs()[0].run_config_schema
              .config_type.fields["ops"].config_type.fields["probe"].config_type.fields["config"].config_type.fields)
    assert fields["kind"].description == "which kind" and fields["kind"].default_value == "a"
    assert type(fields["kind"].config_type).__name__ == "Enum"
    assert fields["inner"].config_type.fields["rate"].description.startswith("a rate in Hz")
    assert fields["ks"].default_value == [1, 2]
    res = dg.materialize([probe], run_config={"ops": {"probe": {"config": {"kind": "b", "cells": [[1, 2]]}}}})
    assert res.output_for_node("probe") == Outer(kind="b", cells=((1, 2),))


@pytest.mark.parametrize("cfg_cls", [C.IngestConfig, C.KeyframesConfig, C.ActivationsConfig, C.HeadScoresConfig,
                                     C.OverlapConfig, C.SimDemosConfig], ids=lambda c: c.__name__)
def test_pipeline_run_config_defaults_are_the_spec_defaults(cfg_cls):
    assert cfg_cls().to_spec() == cfg_cls.spec_class()


def test_resolved_fields_are_not_run_config_and_must_be_given():
    assert "knn" not in C.SelectionConfig.model_fields and "video_dir" not in C.EvalConfig.model_fields
    with pytest.raises(TypeError, match="knn"):
        C.SelectionConfig().to_spec()
    from robosteer_assets.steering.knn import KnnConfig

    knn = KnnConfig(metric="euclidean")
    assert C.SelectionConfig(m=3).to_spec(knn=knn) == C.SelectionConfig.spec_class(m=3, knn=knn)


def test_a_bad_value_fails_when_the_spec_is_built_and_names_the_field():
    with pytest.raises(ValueError, match="SelectionConfig.multitask"):
        C.SelectionConfig(selector="random", multitask="joint").to_spec(knn=C.SelectionConfig.spec_class().knn)


def _spec_step(cfg: Outer, logger, *, out: str, task: str = "") -> dict:
    return {"spec": cfg, "out": out, "task": task}


def _dict_step(spec: dict, logger) -> dict:
    return {"spec": spec}


def test_call_step_rebuilds_the_dataclass_and_passes_the_paths(monkeypatch):
    monkeypatch.setitem(remote.STEPS, "spec_step", f"{__name__}:_spec_step")
    monkeypatch.setitem(remote.STEPS, "dict_step", f"{__name__}:_dict_step")
    log = logging.getLogger("test")
    spec = Outer(kind="b", cells=((1, 2),), inner=Inner(rate=None))
    got = remote.call_step("spec_step", json.loads(json.dumps(to_jsonable(spec))), {"out": "/x"}, log)
    assert got == {"spec": spec, "out": "/x", "task": ""}
    with pytest.raises(SpecError, match="spec_step.spec.kind"):
        remote.call_step("spec_step", {"kind": "z"}, {"out": "/x"}, log)
    with pytest.raises(TypeError, match="out"):
        remote.call_step("spec_step", {}, {}, log)
    assert remote.call_step("dict_step", {"a": 1}, {"out": "/x"}, log) == {"spec": {"a": 1, "out": "/x"}}


def test_every_remote_step_resolves():
    for step in remote.STEPS:
        assert callable(remote.resolve(step)), step
