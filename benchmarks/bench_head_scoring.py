"""Head scoring benchmark: k-NN scores of 144 heads x N rows x head_dim 256 for
all four k, next to the same FLOPs as one plain matmul (the roofline on this machine)
and the paper's 12 s; peak RSS at N = 10000.

    .venv/bin/python benchmarks/bench_head_scoring.py [--quick]

Rows are timed in fresh subprocesses so peak RSS is per size. Ends with
``RESULT roofline_ratio=... score_n2000_s=... score_n10000_s=... peak_mb_n10000=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HEADS, D, KS = 144, 256, (10, 20, 30, 40)
PAPER_S = 12.0


def child(n: int) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from robosteer_assets.common.jaxsetup import configure_jax
    from robosteer_assets.steering.knn import KnnConfig, knn_errors

    configure_jax()
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(n, HEADS, D)).astype(np.float16)  # stored as float16, like head_activations
    actions = rng.normal(size=(n, 8)).astype(np.float32)
    eps = np.repeat(np.arange(max(2, n // 50)), 50)[:n]
    cfg = KnnConfig(ks=KS)
    # warm-up: one head chunk at the same N compiles every shape the timed run uses (the roofline
    # matmul below is warmed up the same way)
    knn_errors(feats[:, : cfg.head_chunk], actions, eps, cfg)
    t0 = time.perf_counter()
    knn_errors(feats, actions, eps, cfg)
    score_s = time.perf_counter() - t0
    # roofline: the similarity matmuls alone (2 * H * N^2 * D FLOPs) as one plain batched matmul, same chunking
    x = jnp.asarray(rng.normal(size=(8, n, D)).astype(np.float32))
    mm = jax.jit(lambda a, b: jnp.einsum("hqd,hnd->hqn", a, b).sum())
    qc = min(n, 512)
    mm(x[:, :qc], x).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(HEADS // 8):
        for q0 in range(0, n, qc):
            mm(x[:, q0:q0 + qc], x).block_until_ready()
    matmul_s = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "score_s": score_s, "matmul_s": matmul_s, "peak_mb": peak_mb,
                      "gflop": 2 * HEADS * n * n * D / 1e9}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="drop N = 10000")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return 0
    sizes = (400, 2000) if args.quick else (400, 2000, 10000)
    print(f"{'N':>6} {'score s':>9} {'matmul s':>9} {'ratio':>6} {'GFLOP':>8} {'GFLOP/s':>8} {'peak MB':>8} "
          f"{'vs paper 12 s':>13}")
    res = {}
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True,
                             env={**os.environ, "JAX_PLATFORMS": "cpu"})
        if out.returncode:
            print(out.stderr[-2000:])
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        res[n] = r
        print(f"{n:>6} {r['score_s']:>9.2f} {r['matmul_s']:>9.2f} {r['score_s'] / r['matmul_s']:>6.2f} "
              f"{r['gflop']:>8.1f} {r['gflop'] / r['score_s']:>8.1f} {r['peak_mb']:>8.0f} "
              f"{r['score_s'] / PAPER_S:>12.2f}x")
    big = res.get(10000, {})
    print(f"RESULT roofline_ratio={res[2000]['score_s'] / res[2000]['matmul_s']:.2f} "
          f"score_n2000_s={res[2000]['score_s']:.2f} "
          f"score_n10000_s={big.get('score_s', float('nan')):.2f} peak_mb_n10000={big.get('peak_mb', float('nan')):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
