"""Benchmark DROID episode writing and per-task ingest (decode + validate + zarr store).

Generates N synthetic episodes (default 20 x 90 steps x 2 cameras, 224x224 frames,
15 Hz) with ``droid.writer.write_episode`` into a temp dir, then times
``droid.store.ingest_task`` with the paper's defaults (6 Hz, 224 px). The same
episodes are also written as a LeRobot v2.1 dataset (``droid.lerobot_writer``) and
ingested with ``droid.lerobot.ingest_lerobot_task`` (``lerobot_episodes_per_s``).

    .venv/bin/python benchmarks/bench_ingest.py [--quick] [--episodes N] [--steps T]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from robosteer_assets.droid.layout import episode_dir_for
from robosteer_assets.droid.lerobot import ingest_lerobot_task
from robosteer_assets.droid.lerobot_writer import LeRobotWriter
from robosteer_assets.droid.reader import ReadConfig, read_episode
from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
from robosteer_assets.droid.synthetic import make_recording
from robosteer_assets.droid.writer import write_episode


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 episodes x 45 steps")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--steps", type=int, default=90)
    ap.add_argument("--image-size", type=int, default=224)
    args = ap.parse_args()
    n, T = (4, 45) if args.quick else (args.episodes, args.steps)
    S = args.image_size
    with tempfile.TemporaryDirectory(prefix="bench_ingest-") as tmp:
        root = Path(tmp) / "demos"
        t0 = time.perf_counter()
        gen_s = lr_write_s = 0.0
        dirs = []
        with LeRobotWriter(Path(tmp) / "lerobot") as lr_writer:
            for i in range(n):
                g0 = time.perf_counter()
                rec = make_recording(T=T, seed=i, image_size=S, control_hz=15.0)
                gen_s += time.perf_counter() - g0
                dirs.append(write_episode(episode_dir_for(root, "bench_task", rec.uuid), rec))
                w0 = time.perf_counter()
                lr_writer.add(rec)
                lr_write_s += time.perf_counter() - w0
        write_s = time.perf_counter() - t0 - gen_s - lr_write_s
        raw_mb = _du(root) / 2**20

        r0 = time.perf_counter()
        read_episode(dirs[0], ReadConfig(image_size=S))
        read_one_s = time.perf_counter() - r0

        cfg = IngestConfig(read=ReadConfig(image_size=S), min_episodes=1)
        res = ingest_task(root / "bench_task", Path(tmp) / "store" / "bench_task", cfg)
        store = EpisodeStore.open(res.store_path)
        store_mb = _du(res.store_path) / 2**20
        lr = ingest_lerobot_task(Path(tmp) / "lerobot", rec.instruction, Path(tmp) / "store" / "bench_lerobot", cfg)
        lr_store = EpisodeStore.open(lr.store_path)
        if lr_store.num_steps != store.num_steps or lr.num_quarantined:
            raise SystemExit(f"LeRobot ingest differs: {lr_store.num_steps} rows ({lr.num_quarantined} quarantined), "
                             f"raw DROID {store.num_steps} rows")

        print(f"machine: shared, {os.cpu_count()} CPUs; episodes={n} steps={T} cameras=2 frame={S}x{S} 15 Hz -> 6 Hz")
        print(f"{'stage':<28}{'seconds':>10}{'per episode':>14}{'note':>30}")
        print(f"{'synthesise recordings':<28}{gen_s:>10.2f}{gen_s / n:>14.3f}")
        print(f"{'write_episode (h5 + 2 mp4)':<28}{write_s:>10.2f}{write_s / n:>14.3f}{f'raw {raw_mb:.1f} MiB':>30}")
        print(f"{'read_episode (1 episode)':<28}{read_one_s:>10.2f}{read_one_s:>14.3f}")
        print(f"{'ingest_task':<28}{res.wall_s:>10.2f}{res.wall_s / n:>14.3f}"
              f"{f'{store.num_steps} rows, zarr {store_mb:.1f} MiB':>30}")
        print(f"{'LeRobot write (v2.1)':<28}{lr_write_s:>10.2f}{lr_write_s / n:>14.3f}")
        print(f"{'ingest_lerobot_task':<28}{lr.wall_s:>10.2f}{lr.wall_s / n:>14.3f}{f'{lr_store.num_steps} rows':>30}")
        eps = n / res.wall_s
        steps_s = n * T / res.wall_s
        print(f"RESULT episodes_per_s={eps:.2f} source_steps_per_s={steps_s:.1f} write_episodes_per_s={n / write_s:.2f} "
              f"lerobot_episodes_per_s={n / lr.wall_s:.2f} "
              f"episodes={n} steps={T} image_size={S} stored_rows={store.num_steps} quarantined={res.num_quarantined}")


if __name__ == "__main__":
    main()
