"""``python -m robosteer_assets.remote.run_step`` — run one GPU step under dagster-pipes.

The orchestrator passes ``extras = {"step": NAME, "spec": {...}, "paths": {...}}``:
``spec`` is the stage's spec dataclass as JSON (``common.spec.to_jsonable``),
``paths`` the resolved locations as strings. A step function is
``fn(spec: SpecDataclass, logger, **paths) -> dict``; ``call_step`` rebuilds
the dataclass named by the annotation of its first parameter
(``common.spec.from_jsonable``: nested dataclasses, tuples, Literals) and passes
the paths as keyword arguments. A step whose first parameter is annotated
``dict`` receives the spec and the paths merged into one plain dict. The returned
summary is reported back as materialization metadata. Without a pipes context
(run by hand) it reads the spec from ``--spec FILE.json`` and the paths from
``--path NAME=VALUE`` options, and prints the summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import logging
import sys
import typing

# step name -> "module:function(spec, logger, **paths) -> dict"
STEPS = {
    "head_activations": "robosteer_assets.steering.activations:run_step",
    "cma_scores": "robosteer_assets.steering.selectors:run_cma_step",
    "smoke_test": "robosteer_assets.vla.policy:run_smoke_test",
    "base_policy": "robosteer_assets.embedded.base_policy:run_step",
    "finetune": "robosteer_assets.training.trainer:run_step",
    "sim_eval": "robosteer_assets.evaluation.evaluator:run_step",
}


def resolve(step: str):
    if step not in STEPS:
        raise SystemExit(f"unknown step {step!r}; expected one of {sorted(STEPS)}")
    mod, fn = STEPS[step].split(":")
    return getattr(importlib.import_module(mod), fn)


def call_step(step: str, spec: dict, paths: dict, logger) -> dict:
    """Rebuild the step's spec dataclass from ``spec`` and run it with ``paths`` as keyword arguments."""
    from robosteer_assets.common.spec import from_jsonable

    fn = resolve(step)
    first = next(iter(inspect.signature(fn).parameters))
    spec_type = typing.get_type_hints(fn).get(first)
    if dataclasses.is_dataclass(spec_type):
        return fn(from_jsonable(spec_type, spec, f"{step}.spec"), logger, **paths)
    return fn({**spec, **paths}, logger)


def _jsonable(summary: dict) -> dict:
    """Pipes metadata: scalars as they are, anything else as a typed JSON value."""
    out = {}
    for k, v in summary.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        else:
            out[k] = {"raw_value": json.loads(json.dumps(v, default=str)), "type": "json"}
    return out


class _PipesLogHandler(logging.Handler):
    def __init__(self, pipes_log):
        super().__init__(logging.INFO)
        self.pipes_log = pipes_log

    def emit(self, record):
        try:
            self.pipes_log.info(f"{record.name}: {record.getMessage()}")
        except Exception:  # never let logging kill the step
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", help="step name (when not run under dagster-pipes)")
    parser.add_argument("--spec", help="spec JSON file (when not run under dagster-pipes)")
    parser.add_argument("--path", action="append", default=[], metavar="NAME=VALUE",
                        help="a resolved path of the step (when not run under dagster-pipes)")
    args = parser.parse_args(argv)

    from robosteer_assets.common.cancel import install_signal_handlers
    from robosteer_assets.common.jaxsetup import configure_jax

    install_signal_handlers()  # SIGINT/SIGTERM from a cancelled run -> stop at the next batch/step
    configure_jax()
    if args.step:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        spec = json.loads(open(args.spec).read()) if args.spec else {}
        bad = [p for p in args.path if "=" not in p]
        if bad:
            raise SystemExit(f"--path: expected NAME=VALUE, found {bad}")
        paths = dict(p.split("=", 1) for p in args.path)
        summary = call_step(args.step, spec, paths, logging.getLogger("robosteer.remote"))
        print(json.dumps(summary, indent=2, default=str))
        return 0

    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        step = pipes.get_extra("step")
        spec = pipes.get_extra("spec")
        paths = pipes.get_extra("paths") if "paths" in pipes.extras else {}
        root = logging.getLogger("robosteer")
        root.setLevel(logging.INFO)
        root.addHandler(_PipesLogHandler(pipes.log))
        pipes.log.info(f"robosteer remote step {step!r} starting")
        summary = call_step(step, spec, paths, logging.getLogger("robosteer.remote"))
        pipes.report_asset_materialization(metadata=_jsonable(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
