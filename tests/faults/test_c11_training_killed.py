"""Case 11: a finetuning step is killed mid-run (a GPU node preempted, `kill -9` of the
dagster-pipes step ``python -m robosteer_assets.remote.run_step``): the task's previous
checkpoint stays intact at its final path and still loads, the orbax training state of the
killed run is kept beside it, and the next run of the same step resumes from the last saved
step (its summary and log say ``resumed from step N``), exports the new checkpoint atomically
and removes the training state. (That a resumed run reaches bit-identical parameters is tested
in tests/training/test_resume_and_sharding.py.)
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from robosteer_assets.droid import synthetic
from robosteer_assets.droid.reader import ReadConfig
from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
from robosteer_assets.vla import model as M
from robosteer_assets.vla.checkpoint import load_checkpoint, save_checkpoint
from robosteer_assets.vla.config import get_config
from robosteer_assets.vla.normalize import compute_norm_stats
from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

from ._support import tree_digest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
STEPS = 24


def _setup(root: Path) -> None:
    synthetic.write_task(root / "demos", "pick_cube", n=2, T=10, image_size=32, control_hz=6.0)
    ingest_task(root / "demos" / "pick_cube", root / "store", IngestConfig(read=ReadConfig(image_size=32),
                                                                            min_episodes=2))
    store = EpisodeStore.open(root / "store")
    cfg = get_config("pi0_micro", vocab_size=128, max_token_len=16)
    tok = train_tiny_tokenizer(["pick up the red cube"], root / "tok.model", cfg.vocab_size)
    stats = compute_norm_stats({"state": np.asarray(store.arrays["state"][:]),
                                "actions": np.asarray(store.arrays["actions"][:])})
    save_checkpoint(root / "base", cfg, M.init_params(cfg, 0), stats, tokenizer_path=tok)
    (root / "selected_heads.json").write_text(json.dumps({"heads": [[0, 1], [1, 6]]}))


def _spec(root: Path, steps: int) -> list[str]:
    """The step's command-line arguments: the TrainConfig as JSON plus the resolved paths."""
    spec = {"method": "steering", "steps": steps, "batch_size": 2, "save_interval": 4, "log_interval": 4,
            "schedule": {"warmup_steps": 2, "peak_lr": 1e-2, "decay_steps": steps, "decay_lr": 1e-3}}
    path = root / f"spec_{steps}.json"
    path.write_text(json.dumps(spec))
    paths = {"base_checkpoint": root / "base", "store": root / "store", "out": root / "checkpoints" / "steering",
             "selected_heads": root / "selected_heads.json"}
    return ["--spec", str(path), *[a for k, v in paths.items() for a in ("--path", f"{k}={v}")]]


def _step(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    env.setdefault("ROBOSTEER_JAX_CACHE", str(ROOT / ".cache" / "jax"))
    return subprocess.Popen([sys.executable, "-m", "robosteer_assets.remote.run_step", "--step", "finetune", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _summary(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{"):])


def test_killed_finetuning_keeps_the_previous_checkpoint_and_resumes(tmp_path):
    _setup(tmp_path)
    out = tmp_path / "checkpoints" / "steering"
    first = _step(_spec(tmp_path, 4))  # yesterday's checkpoint of this task
    o, e = first.communicate(timeout=300)
    assert first.returncode == 0, e[-3000:]
    before = tree_digest(out)

    victim = _step(_spec(tmp_path, STEPS))  # today's retraining (new config: a fresh run)
    state = tmp_path / "checkpoints" / ".steering.train_state"
    deadline = time.monotonic() + 240
    while not any(p.name.isdigit() and int(p.name) >= 4 for p in state.glob("*")) and victim.poll() is None:
        assert time.monotonic() < deadline, "no training state was saved in time"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"

    assert tree_digest(out) == before  # the previous checkpoint, byte for byte
    assert load_checkpoint(out).extra["steps"] == 4
    saved = sorted(int(p.name) for p in state.glob("*") if p.name.isdigit())
    assert saved and saved[-1] >= 4

    again = _step(_spec(tmp_path, STEPS))
    o, e = again.communicate(timeout=300)
    assert again.returncode == 0, e[-3000:]
    summary = _summary(o)
    assert summary["resumed_from"] in saved and summary["resumed_from"] < STEPS
    assert f"steering: resumed from step {summary['resumed_from']} of {STEPS}" in e
    done = load_checkpoint(out)
    assert done.extra["steps"] == STEPS and tree_digest(out) != before
    assert len(json.loads((out / "loss_curve.json").read_text())) == STEPS
    assert not state.exists() and not list(out.parent.glob(".tmp-*"))
