"""Case 12: the disk fills up, or permission is denied, while a checkpoint is
being written: the save fails with the OS error and the path, and the previous
checkpoint at that directory stays intact (temp sibling + atomic rename).

Both faults are real OS errors in a child process: ``RLIMIT_FSIZE`` makes the
kernel refuse writes past a size (EFBIG, what a full disk looks like to the
writer), and a read-only checkpoint folder (the child drops root privileges
first, since root ignores permissions) refuses the temp sibling.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from robosteer_assets.vla.checkpoint import load_params, save_checkpoint
from robosteer_assets.vla.config import get_config
from robosteer_assets.vla.model import init_params
from robosteer_assets.vla.normalize import compute_norm_stats

from ._support import tree_digest

CHILD = r"""
import os, resource, signal, sys
import numpy as np
from robosteer_assets.vla.checkpoint import save_checkpoint
from robosteer_assets.vla.config import get_config
from robosteer_assets.vla.model import init_params
from robosteer_assets.vla.normalize import compute_norm_stats

target, fault, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = get_config("pi0_micro")
rng = np.random.default_rng(1)
stats = compute_norm_stats({"state": rng.normal(size=(64, 8)), "actions": rng.normal(size=(64, 8))})
params = init_params(cfg, seed=1)
save_checkpoint(scratch, cfg, params, stats)  # warm-up: every lazy import happens before the fault
if fault == "disk_full":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
elif fault == "read_only" and os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)  # nobody: permissions apply
save_checkpoint(target, cfg, params, stats)
print("SAVED")
"""


def _save_in_child(target: Path, fault: str, scratch: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(target), fault, str(scratch)],
                          capture_output=True, text=True, timeout=120)


def test_failed_checkpoint_write_keeps_the_previous_checkpoint():
    cfg = get_config("pi0_micro")
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(64, 8)), "actions": rng.normal(size=(64, 8))})
    params = init_params(cfg, seed=0)
    base = Path(tempfile.mkdtemp(prefix="robosteer-faults-c12-"))  # outside root's 0700 pytest folder
    try:
        os.chmod(base, 0o755)
        scratch = base / "scratch"
        scratch.mkdir(mode=0o777)
        os.chmod(scratch, 0o777)
        ckpt_root = base / "checkpoints"
        ckpt = save_checkpoint(ckpt_root / "steering", cfg, params, stats)
        before = tree_digest(ckpt)

        # 1. disk full half way through the parameter file
        r = _save_in_child(ckpt, "disk_full", scratch / "a")
        assert r.returncode != 0 and "SAVED" not in r.stdout
        assert "File too large" in r.stderr and f"{ckpt_root}/.tmp-steering-" in r.stderr
        assert tree_digest(ckpt) == before
        assert sorted(p.name for p in ckpt_root.iterdir()) == ["steering"]  # no half-written leftover

        # 2. permission denied: the checkpoint folder is read-only
        os.chmod(ckpt_root, 0o555)
        r = _save_in_child(ckpt, "read_only", scratch / "b")
        os.chmod(ckpt_root, 0o755)
        assert r.returncode != 0 and "SAVED" not in r.stdout
        assert "PermissionError" in r.stderr and f"{ckpt_root}/.tmp-steering-" in r.stderr
        assert tree_digest(ckpt) == before
        assert sorted(p.name for p in ckpt_root.iterdir()) == ["steering"]

        # the previous checkpoint still loads with its own values
        loaded = load_params(ckpt, cfg)
        np.testing.assert_array_equal(loaded["action_in_proj"]["kernel"], params["action_in_proj"]["kernel"])
    finally:
        shutil.rmtree(base, ignore_errors=True)
