"""Evaluation cost: a 40-trial sim evaluation of a tiny policy, and the policy server under load.

1. The 40-cell grid of ``--task`` in the simulator with a ``pi0_tiny`` checkpoint (random weights
   unless ``--checkpoint DIR``) queried in-process through ``LocalPolicyClient``, with 1 and
   ``--workers`` processes (target: <= 3 min for 40 trials on this 2-core CPU).
2. ``robosteer serve``'s server (``evaluation.server``) on loopback with the same checkpoint:
   requests/s and p50 / p99 latency of DROID requests (224x224 images) from 1 and 4 concurrent
   clients (each its own websocket connection and thread).

    .venv/bin/python benchmarks/bench_eval.py [--quick] [--checkpoint DIR] [--workers N]

Ends with ``RESULT eval40_s=... trials_per_s=... server_p99_ms_4clients=...``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MUJOCO_GL", "egl")
if "MENAGERIE_ROOT" not in os.environ and (ROOT.parent / "shared" / "menagerie").is_dir():
    os.environ["MENAGERIE_ROOT"] = str((ROOT.parent / "shared" / "menagerie").resolve())
os.environ.setdefault("ROBOSTEER_JAX_CACHE", str(ROOT / ".cache" / "jax"))


def make_checkpoint(tmp: Path) -> Path:
    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.normalize import compute_norm_stats
    from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

    cfg = get_config("pi0_tiny")
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(256, 8)), "actions": rng.normal(size=(256, 8)) * 0.3})
    tok = train_tiny_tokenizer(["pick up red cube", "press red button hard"], tmp / "tok.model", cfg.vocab_size)
    return save_checkpoint(tmp / "ckpt", cfg, M.init_params(cfg, 0), stats, tokenizer_path=tok)


def bench_eval(task: str, ckpt: Path, cells, workers: int) -> dict:
    from robosteer_assets.evaluation.evaluator import PolicySpec, SimEvalConfig, evaluate

    t0 = time.monotonic()
    rows = evaluate(task, PolicySpec(kind="checkpoint", checkpoint=str(ckpt)), "zero_shot",
                    SimEvalConfig(cells=cells, workers=workers))
    wall = time.monotonic() - t0
    return {"workers": workers, "trials": len(rows), "wall_s": wall, "trials_per_s": len(rows) / wall,
            "steps": int(sum(r["steps"] for r in rows)), "successes": int(sum(r["success"] for r in rows))}


def request(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"observation/exterior_image_1_left": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "observation/wrist_image_left": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "observation/joint_position": rng.normal(size=7), "observation/gripper_position": np.array([0.2]),
            "prompt": "pick up red cube"}


def bench_server(ckpt: Path, clients: int, per_client: int) -> dict:
    from robosteer_assets.evaluation.client import PolicyClient
    from robosteer_assets.evaluation.server import ServerConfig, run_in_thread
    from robosteer_assets.vla.policy import Policy

    policy = Policy.from_checkpoint(ckpt)
    lat: list[float] = []
    lock = threading.Lock()
    with run_in_thread(policy, ServerConfig(host="127.0.0.1", port=0)) as h:
        with PolicyClient("127.0.0.1", h.port) as warm:  # compile outside the measurement
            for i in range(3):
                warm.infer(request(i))
        barrier = threading.Barrier(clients + 1)

        def client(k: int) -> None:
            with PolicyClient("127.0.0.1", h.port) as c:
                reqs = [request(1000 * k + i) for i in range(per_client)]
                barrier.wait()
                for r in reqs:
                    t = time.perf_counter()
                    out = c.infer(r)
                    dt = time.perf_counter() - t
                    assert np.isfinite(out["actions"]).all()
                    with lock:
                        lat.append(dt)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000.0
    return {"clients": clients, "requests": len(lat), "rps": len(lat) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 cells scaled to 40, fewer requests")
    ap.add_argument("--task", default="pick_cube")
    ap.add_argument("--checkpoint", help="checkpoint dir (default: a random-init pi0_tiny)")
    ap.add_argument("--workers", type=int, default=2, help="processes for the parallel evaluation")
    args = ap.parse_args()
    from robosteer_assets.common.jaxsetup import configure_jax
    from robosteer_assets.sim.grid import DEFAULT_GRID

    configure_jax()
    cells = DEFAULT_GRID.cells()[::5] if args.quick else DEFAULT_GRID.cells()
    per_client = 10 if args.quick else 40
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(args.checkpoint) if args.checkpoint else make_checkpoint(Path(tmp))
        print(f"bench_eval: {args.task}, {len(cells)} grid cells, checkpoint {ckpt} (shared 2-core machine: noisy)")
        evals = [bench_eval(args.task, ckpt, cells, 1)]
        if args.workers > 1:
            evals.append(bench_eval(args.task, ckpt, cells, args.workers))
        print(f"{'workers':>7} {'trials':>6} {'wall_s':>8} {'trials/s':>9} {'env steps':>9} {'successes':>9}")
        for e in evals:
            print(f"{e['workers']:>7} {e['trials']:>6} {e['wall_s']:>8.1f} {e['trials_per_s']:>9.3f} {e['steps']:>9} "
                  f"{e['successes']:>9}")
        servers = [bench_server(ckpt, n, per_client) for n in (1, 4)]
        print(f"{'clients':>7} {'requests':>8} {'req/s':>7} {'p50_ms':>8} {'p99_ms':>8}")
        for s in servers:
            print(f"{s['clients']:>7} {s['requests']:>8} {s['rps']:>7.1f} {s['p50_ms']:>8.1f} {s['p99_ms']:>8.1f}")
    best = min(evals, key=lambda e: e["wall_s"] / e["trials"])
    eval40 = best["wall_s"] * DEFAULT_GRID.num_cells / best["trials"]
    print(f"RESULT eval40_s={eval40:.1f} trials_per_s={best['trials_per_s']:.3f} eval_workers={best['workers']} "
          f"server_rps_1client={servers[0]['rps']:.1f} server_p50_ms_1client={servers[0]['p50_ms']:.1f} "
          f"server_p99_ms_1client={servers[0]['p99_ms']:.1f} server_rps_4clients={servers[1]['rps']:.1f} "
          f"server_p50_ms_4clients={servers[1]['p50_ms']:.1f} server_p99_ms_4clients={servers[1]['p99_ms']:.1f}"
          f" measured_trials={best['trials']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
