"""Case 17: a Dagster run cancelled during head-activation extraction; the next
run starts clean.

The run is a real Dagster run (``dg.materialize`` of ``head_activations`` on a
persistent instance) in a child process; the extraction itself runs one level
further down, in the dagster-pipes subprocess, on a tiny random base model. The
test cancels it the way Dagster's run launcher does, with an interrupt to the
run worker, once the extraction has created its temporary store.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from robosteer_assets.defs import ingest, steering
from robosteer_assets.defs.resources import BaseModel, gpu_pipes_client
from robosteer_assets.droid.store import EpisodeStore
from robosteer_assets.steering.activations import ActivationStore, ActivationStoreError
from robosteer_assets.vla import model as M
from robosteer_assets.vla.checkpoint import save_checkpoint
from robosteer_assets.vla.config import get_config
from robosteer_assets.vla.normalize import compute_norm_stats
from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

from ._support import T_STEPS, TASKS, failure_text

pytestmark = pytest.mark.slow

RUN = r"""
import sys
import dagster as dg
from robosteer_assets.defs import ingest, steering
from robosteer_assets.defs.resources import BaseModel, ProjectPaths, gpu_pipes_client

assets = [ingest.raw_episodes, ingest.keyframes, steering.head_activations]
res = dg.materialize(assets, selection=[steering.head_activations], partition_key="pick_cube",
                     instance=dg.DagsterInstance.get(), raise_on_error=False,
                     resources={"paths": ProjectPaths(data_root=sys.argv[1]), "base_model": BaseModel(),
                                "gpu_pipes": gpu_pipes_client()},
                     run_config=dg.RunConfig(ops={"head_activations": steering.ActivationsConfig(
                         timesteps="all", batch_size=4)}))
print("RUN", res.run_id, res.success, flush=True)
"""


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_cancelled_activation_run_leaves_nothing_and_next_run_is_clean(project, tmp_path, monkeypatch):
    paths = project.paths
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    store = EpisodeStore.open(paths.store("pick_cube"))
    cfg = get_config("pi0_tiny")
    tok = train_tiny_tokenizer(["pick up the red cube"], tmp_path / "tok.model", cfg.vocab_size)
    stats = compute_norm_stats({"state": np.asarray(store.arrays["state"][:]),
                                "actions": np.asarray(store.arrays["actions"][:])})
    save_checkpoint(paths.base_checkpoint(), cfg, M.init_params(cfg, 0), stats, tokenizer_path=tok)
    out = paths.steering("pick_cube") / steering.ACTIVATIONS
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("task", ["pick_cube"])

    # 1. start the run, wait until the extraction is writing its temporary store, then cancel it as the
    #    UI does: record the termination request, interrupt the run worker (which forwards SIGINT to the
    #    dagster-pipes subprocess and waits for it)
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(project.root)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    pipes_children: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if list(out.parent.glob(f".tmp-{out.name}-*")):
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be cancelled:\n" + proc.stdout.read()
        pipes_children = _children(proc.pid)  # the dagster-pipes subprocess doing the extraction
        (run,) = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        instance.report_run_canceling(run)
        os.kill(proc.pid, signal.SIGINT)
        log, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert pipes_children, "no dagster-pipes subprocess was running"
    assert "[pipes] execution interrupted, sending SIGINT to subprocess" in log
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED
    assert not instance.get_latest_materialization_event(dg.AssetKey("head_activations"))
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pipes_children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pipes_children), "the extraction subprocess outlived the cancelled run"
    # the extraction stopped (cooperative cancellation between batches) and wrote nothing at the final path
    assert not out.exists()
    with pytest.raises(ActivationStoreError, match="no activation store"):
        ActivationStore.open(out)

    # 2. the next run (same instance) starts clean and produces a complete store
    res = dg.materialize(
        [ingest.raw_episodes, ingest.keyframes, steering.head_activations], selection=[steering.head_activations],
        partition_key="pick_cube", instance=instance,
        resources={"paths": paths, "base_model": BaseModel(), "gpu_pipes": gpu_pipes_client()},
        run_config=dg.RunConfig(ops={"head_activations": steering.ActivationsConfig(timesteps="all", batch_size=4)}),
        raise_on_error=False,
    )
    assert res.success, failure_text(res)
    acts = ActivationStore.open(out)
    assert acts.attrs["num_examples"] == TASKS["pick_cube"] * T_STEPS
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".tmp-")] == []
