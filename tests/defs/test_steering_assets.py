"""Group `steering` end to end in Dagster on a tiny random base model: activations go
through dagster-pipes (a subprocess), then scores, selection and overlap."""

import json

import dagster as dg
import numpy as np
import pytest

from robosteer_assets.defs import ingest, steering, training
from robosteer_assets.defs.resources import BaseModel, ProjectPaths, gpu_pipes_client
from robosteer_assets.droid import synthetic
from robosteer_assets.droid.store import EpisodeStore
from robosteer_assets.vla import model as M
from robosteer_assets.vla.checkpoint import save_checkpoint
from robosteer_assets.vla.config import get_config
from robosteer_assets.vla.normalize import compute_norm_stats
from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

pytestmark = pytest.mark.slow


def test_steering_chain_materializes(tmp_path):
    paths = ProjectPaths(data_root=str(tmp_path / "data"))
    synthetic.write_task(paths.demos(), "pick_cube", n=4, T=16, image_size=32, control_hz=6.0)
    resources = {"paths": paths, "base_model": BaseModel(), "gpu_pipes": gpu_pipes_client()}
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("task", ["pick_cube"])
        assert dg.materialize([ingest.raw_episodes, ingest.keyframes], partition_key="pick_cube", instance=inst,
                              resources=resources, run_config=dg.RunConfig(
                                  ops={"raw_episodes": ingest.IngestConfig(min_episodes=4, read={"image_size": 32})})).success
        store = EpisodeStore.open(paths.store("pick_cube"))
        cfg = get_config("pi0_tiny")
        tok = train_tiny_tokenizer(["pick up the red cube"], tmp_path / "tok.model", cfg.vocab_size)
        stats = compute_norm_stats({"state": np.asarray(store.arrays["state"][:]),
                                    "actions": np.asarray(store.arrays["actions"][:])})
        save_checkpoint(paths.base_checkpoint(), cfg, M.init_params(cfg, 0), stats, tokenizer_path=tok)

        assets = [ingest.raw_episodes, ingest.keyframes, steering.head_activations, steering.head_scores,
                  steering.selected_heads, steering.head_overlap]
        res = dg.materialize(
            assets, selection=assets[2:], partition_key="pick_cube", instance=inst, resources=resources,
            run_config=dg.RunConfig(ops={
                "head_activations": steering.ActivationsConfig(timesteps="all", batch_size=16),
                "head_scores": steering.HeadScoresConfig(ks=[2, 4, 6, 8]),
                "selected_heads": steering.SelectionConfig(m=5),
            }),
        )
        assert res.success
        checks = {c.check_name: c.passed for c in res.get_asset_check_evaluations()}
        assert checks == {"finite_activations": True, "finite_scores": True}
        sel = json.loads((paths.steering("pick_cube") / "selected_heads.json").read_text())
        assert len(sel["heads"]) == 5 and sel["k"] in (2, 4, 6, 8)
        md = res.asset_materializations_for_node("head_activations")[0].metadata
        assert md["num_examples"].value == 64  # reported back over dagster-pipes
        ov = json.loads((paths.steering("pick_cube") / "head_overlap.json").read_text())
        assert ov["top20_subsets"]["names"][0] == "all" and ov["top20_subsets"]["overlap_pct"][0][0] == 100.0

        # group `training`: both methods through dagster-pipes, blocking "loads and predicts finite actions"
        tr_assets = assets + [training.steering_checkpoint, training.full_lora_checkpoint]
        small = training.FinetuneConfig(steps=2, batch_size=2, schedule={"warmup_steps": 1, "decay_steps": 2}, log_interval=1)
        res = dg.materialize(tr_assets, selection=tr_assets[-2:], partition_key="pick_cube", instance=inst,
                             resources=resources, run_config=dg.RunConfig(
                                 ops={"steering_checkpoint": small, "full_lora_checkpoint": small}))
        assert res.success
        assert all(c.passed for c in res.get_asset_check_evaluations())
        md = res.asset_materializations_for_node("steering_checkpoint")[0].metadata
        assert md["trainable_parameters"].value < res.asset_materializations_for_node(
            "full_lora_checkpoint")[0].metadata["trainable_parameters"].value
        from robosteer_assets.training.export import load_adapters

        adapters = load_adapters(paths.checkpoints("pick_cube", "steering"))  # orbax adapters/ beside params/
        assert adapters and all("lora" in p for p in adapters)
