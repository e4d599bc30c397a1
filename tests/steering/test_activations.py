"""head activations: a tiny random model over a synthetic task store -> zarr, with
half-written / corrupt stores refused."""

import shutil

import numpy as np
import pytest

from robosteer_assets.droid import synthetic
from robosteer_assets.droid.keyframe_table import compute_keyframes
from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
from robosteer_assets.droid.reader import ReadConfig
from robosteer_assets.steering.activations import (ActivationsConfig, ActivationStore, ActivationStoreError,
                                                   extract_activations)
from robosteer_assets.vla import model as M
from robosteer_assets.vla.checkpoint import load_checkpoint, save_checkpoint
from robosteer_assets.vla.config import get_config
from robosteer_assets.vla.normalize import compute_norm_stats
from robosteer_assets.vla.tokenizer import train_tiny_tokenizer


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("act")
    synthetic.write_task(root / "demos", "pick_cube", n=3, T=12, image_size=32, control_hz=6.0)
    ingest_task(root / "demos" / "pick_cube", root / "store",
                IngestConfig(read=ReadConfig(image_size=32), min_episodes=3))
    store = EpisodeStore.open(root / "store")
    cfg = get_config("pi0_tiny")
    tok = train_tiny_tokenizer(["pick up the red cube"], root / "tok.model", cfg.vocab_size)
    stats = compute_norm_stats({"state": np.asarray(store.arrays["state"][:]),
                                "actions": np.asarray(store.arrays["actions"][:])})
    save_checkpoint(root / "ckpt", cfg, M.init_params(cfg, 0), stats, tokenizer_path=tok)
    return root, store, load_checkpoint(root / "ckpt")


def test_extract_keyframe_activations(task):
    root, store, ckpt = task
    rows = compute_keyframes(store)["row"].to_numpy()
    out = root / "act" / "activations.zarr"
    summary = extract_activations(store, rows, ckpt, out, ActivationsConfig(batch_size=4), checkpoint_id="base")
    a = ActivationStore.open(out)
    acts, actions, eps = a.load()
    cfg = ckpt.cfg
    assert acts.shape == (len(rows), cfg.num_layers, cfg.num_heads, cfg.head_dim)
    assert a.group["activations"].dtype == np.float16 and actions.shape == (len(rows), 8)
    assert set(eps.tolist()) == {0, 1, 2} and summary["num_examples"] == len(rows)
    assert np.isfinite(acts).all() and acts.std() > 0
    assert summary["std"] == pytest.approx(float(acts.std()), rel=1e-4)  # what the head_activations check reads
    # batching and padding do not change the values
    out2 = root / "act2" / "activations.zarr"
    extract_activations(store, rows, ckpt, out2, ActivationsConfig(batch_size=len(rows), storage_dtype="float32"))
    np.testing.assert_allclose(ActivationStore.open(out2).load()[0], acts, rtol=2e-2, atol=2e-3)


def test_half_written_and_missing_stores_are_refused(task):
    root, store, ckpt = task
    out = root / "act3" / "activations.zarr"
    extract_activations(store, np.arange(4), ckpt, out, ActivationsConfig(batch_size=4, timesteps="all"))
    import zarr

    g = zarr.open_group(str(out), mode="r+")
    del g.attrs["complete"]
    with pytest.raises(ActivationStoreError, match="half-written"):
        ActivationStore.open(out)
    shutil.rmtree(out)
    with pytest.raises(ActivationStoreError, match="no activation store"):
        ActivationStore.open(out)
