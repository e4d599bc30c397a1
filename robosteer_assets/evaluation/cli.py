"""``robosteer serve`` / ``robosteer eval ...`` / ``robosteer sql``: serving and evaluating policies.

``robosteer serve --checkpoint DIR [--port P]``: serve a checkpoint on openpi's websocket protocol
(the stock ``openpi-client`` drives it unchanged; ``GET /healthz``).

``robosteer eval sim --task T --method M (--checkpoint DIR | --server HOST:PORT | --expert | --random)``:
the 40 grid trials in the simulator, written to the trial store (``--trials``, default data/trials).

``robosteer eval sheet --task T --method M --out FILE.csv``: a trial sheet for operators of the real
robot (the 40 cells with their placements and yaws); ``robosteer eval ingest FILE.csv`` validates a
filled sheet and loads it (ingesting the same sheet twice adds nothing).

``robosteer sql FILE.sql``: run a query from ``sql/`` over the trial store and print the table.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

VARIATIONS = ("none", "lighting", "form", "distractors")


def _default_trials() -> Path:
    return Path(os.environ.get("ROBOSTEER_DATA_ROOT", "data")) / "trials"


def register(subparsers) -> None:
    s = subparsers.add_parser("serve", help="serve a checkpoint on openpi's websocket protocol")
    s.add_argument("--checkpoint", type=Path, required=True, help="checkpoint directory (params/ + assets/)")
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=4, help="inference threads")
    s.add_argument("--num-steps", type=int, default=10, help="Euler steps of the sampler (openpi: 10)")
    s.set_defaults(handler=run_serve)

    e = subparsers.add_parser("eval", help="evaluate on the 40-cell grid: sim trials, real-robot trial sheets",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = e.add_subparsers(dest="eval_command", required=True)
    sim = sub.add_parser("sim", help="run the grid trials of a policy in the simulator")
    sim.add_argument("--task", required=True)
    sim.add_argument("--method", required=True, help="label stored with the trials (zero_shot, steering, ...)")
    who = sim.add_mutually_exclusive_group(required=True)
    who.add_argument("--checkpoint", type=Path, help="checkpoint directory, loaded in each worker")
    who.add_argument("--server", help="HOST:PORT of a running `robosteer serve`")
    who.add_argument("--expert", action="store_true", help="the scripted expert (harness check)")
    who.add_argument("--random", action="store_true", help="random actions (harness check)")
    sim.add_argument("--variation", default="none", choices=VARIATIONS)
    sim.add_argument("--actions-per-chunk", type=int, default=8)
    sim.add_argument("--max-steps", type=int, default=None, help="default: the task's step limit")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--workers", type=int, default=1)
    sim.add_argument("--cells", nargs="+", default=None, metavar="ROW,COL",
                     help="only these grid cells (default: all 40), e.g. --cells 0,0 2,3")
    sim.add_argument("--video-dir", type=Path, default=None, help="record one MP4 per trial here")
    sim.add_argument("--trials", type=Path, default=None, help="trial store (default data/trials)")
    sim.set_defaults(handler=run_eval_sim)

    sh = sub.add_parser("sheet", help="write a real-robot trial sheet (CSV) for operators")
    sh.add_argument("--task", required=True)
    sh.add_argument("--method", required=True)
    sh.add_argument("--checkpoint-id", default="", help="what is being evaluated (free text, e.g. a fingerprint)")
    sh.add_argument("--variation", default="none", choices=VARIATIONS)
    sh.add_argument("--seed", type=int, default=0, help="seed of the trial yaws")
    sh.add_argument("--out", type=Path, default=None, help="default: <task>_<method>_sheet.csv")
    sh.set_defaults(handler=run_sheet)

    ing = sub.add_parser("ingest", help="validate and load filled trial sheets")
    ing.add_argument("files", type=Path, nargs="+")
    ing.add_argument("--trials", type=Path, default=None, help="trial store (default data/trials)")
    ing.set_defaults(handler=run_ingest)

    q = subparsers.add_parser("sql", help="run a SQL file (sql/*.sql) over the trial store and print the table")
    q.add_argument("file", type=Path)
    q.add_argument("--trials", type=Path, default=None, help="trial store (default data/trials)")
    q.set_defaults(handler=run_sql)


def run_serve(args) -> int:
    from robosteer_assets.common.jaxsetup import configure_jax
    from robosteer_assets.evaluation.server import serve_checkpoint
    from robosteer_assets.vla.checkpoint import CheckpointError

    configure_jax()
    try:
        return serve_checkpoint(args.checkpoint, args.host, args.port, args.workers, args.num_steps)
    except (CheckpointError, OSError) as e:
        print(f"ERROR {e}")
        return 1


def run_eval_sim(args) -> int:
    from robosteer_assets.evaluation.evaluator import EvalError, PolicySpec, SimEvalConfig, evaluate
    from robosteer_assets.evaluation.trials import TrialStoreError, write_trials

    if args.checkpoint:
        from robosteer_assets.common.jaxsetup import configure_jax

        configure_jax()
        spec = PolicySpec(kind="checkpoint", checkpoint=str(args.checkpoint))
    elif args.server:
        host, _, port = args.server.rpartition(":")
        if not host or not port.isdigit():
            print(f"ERROR --server: expected HOST:PORT, found {args.server!r}")
            return 2
        spec = PolicySpec(kind="server", host=host, port=int(port))
    else:
        spec = PolicySpec(kind="expert" if args.expert else "random")
    try:
        cells = None if args.cells is None else tuple(tuple(int(v) for v in c.split(",")) for c in args.cells)
    except ValueError:
        print(f"ERROR --cells: expected ROW,COL pairs such as 2,3, found {args.cells}")
        return 2
    try:
        cfg = SimEvalConfig(variation=args.variation, cells=cells, actions_per_chunk=args.actions_per_chunk,
                            max_steps=args.max_steps, seed=args.seed, workers=args.workers,
                            record_video=args.video_dir is not None, video_dir=str(args.video_dir or ""))
        rows = evaluate(args.task, spec, args.method, cfg)
        path = write_trials(args.trials or _default_trials(), rows)
    except (EvalError, TrialStoreError, ValueError) as e:
        print(f"ERROR {e}")
        return 1
    n_ok = sum(r["success"] for r in rows)
    for r in rows:
        print(f"cell ({r['row']}, {r['col']})  {'OK  ' if r['success'] else 'FAIL'}  {r['steps']:>3} steps  "
              f"{r['failure_reason'] or ''}")
    print(f"{args.task} / {args.method}: {n_ok}/{len(rows)} successes ({100.0 * n_ok / len(rows):.1f} %); "
          f"trials in {path}")
    return 0


def run_sheet(args) -> int:
    from robosteer_assets.evaluation.sheets import write_sheet

    out = args.out or Path(f"{args.task}_{args.method}_sheet.csv")
    try:
        write_sheet(out, args.task, args.method, checkpoint_id=args.checkpoint_id, variation=args.variation,
                    seed=args.seed)
    except ValueError as e:
        print(f"ERROR {e}")
        return 1
    print(f"wrote {out}: fill in `success` (1/0) for each of the 40 cells, then `robosteer eval ingest {out}`")
    return 0


def run_ingest(args) -> int:
    from robosteer_assets.evaluation.sheets import SheetError, ingest_sheet
    from robosteer_assets.evaluation.trials import TrialStoreError

    rc = 0
    for f in args.files:
        try:
            rep = ingest_sheet(f, args.trials or _default_trials())
        except (SheetError, TrialStoreError, OSError) as e:
            print(f"INVALID {f}:\n{e}")
            rc = 1
            continue
        print(f"OK {f}: {rep.added} trials added, {rep.skipped_existing} already in the store"
              + (f" ({rep.file})" if rep.file else ""))
    return rc


def run_sql(args) -> int:
    from robosteer_assets.evaluation.sqlrun import SqlError, run_sql_file

    try:
        print(run_sql_file(args.file, args.trials or _default_trials()))
    except (SqlError, OSError) as e:
        print(f"ERROR {e}")
        return 1
    return 0
