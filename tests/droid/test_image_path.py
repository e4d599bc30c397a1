"""One image path: a camera frame reaches the model as the same pixels whether it was ingested
from a demonstration MP4 or sent to ``Policy.infer``; stores from another resize are stale."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from robosteer_assets.common.images import RESIZE_METHOD, resize_with_pad
from robosteer_assets.droid import errors as E
from robosteer_assets.droid.layout import MP4_DIR, episode_dir_for
from robosteer_assets.droid.reader import ReadConfig, frame_to_image
from robosteer_assets.droid.store import EpisodeStore, IngestConfig, StaleStoreError, ingest_task, store_is_current
from robosteer_assets.droid.synthetic import make_recording
from robosteer_assets.droid.writer import write_episode
from robosteer_assets.vla.policy import model_images
from robosteer_assets.vla.transforms import make_observation, prepare_images

RES = 224  # the model resolution (Policy.infer resizes requests to cfg.vision.resolution)
READ = ReadConfig(image_size=RES, target_hz=None)


def _decoded(mp4) -> np.ndarray:
    """Every frame of ``mp4`` as decoded uint8 RGB, what a camera client would send."""
    import av

    with av.open(str(mp4)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])


def _ingest_one(tmp_path, frame_hw: tuple[int, int]):
    rec = make_recording(T=3, seed=21, image_size=frame_hw, control_hz=15.0)
    ep_dir = write_episode(episode_dir_for(tmp_path / "demos", "pick_cube", rec.uuid), rec)
    ingest_task(tmp_path / "demos" / "pick_cube", tmp_path / "store", IngestConfig(read=READ, min_episodes=1))
    store = EpisodeStore.open(tmp_path / "store")
    ext = _decoded(ep_dir / MP4_DIR / f"{rec.exterior_serial}.mp4")
    wrist = _decoded(ep_dir / MP4_DIR / f"{rec.wrist_serial}.mp4")
    return store, ext, wrist


def test_droid_720p_frame_gives_identical_model_inputs_through_ingest_and_infer(tmp_path):
    store, ext, wrist = _ingest_one(tmp_path, (720, 1280))
    assert ext.shape == (3, 720, 1280, 3)
    stored = np.asarray(store.arrays["images"][:])
    assert store.attrs["image_resize"] == RESIZE_METHOD
    for t in range(3):
        served = model_images(ext[t], wrist[t], RES)  # what Policy.infer builds from the request
        np.testing.assert_array_equal(stored[t:t + 1], served)
        # and the float model inputs (make_observation's image transform) are identical too
        np.testing.assert_array_equal(prepare_images(stored[t:t + 1], RES), prepare_images(served, RES))
    # letterboxed, not cropped: 1280x720 -> 224x126 at row int(98 / 2) = 49, black bars above and below
    img = stored[0, 0]
    assert (img[:49] == 0).all() and (img[49 + 126:] == 0).all()
    assert img[49:49 + 126].reshape(-1, 3).max(axis=0).min() > 0
    np.testing.assert_array_equal(img[49:49 + 126], np.asarray(
        Image.fromarray(ext[0]).resize((224, 126), resample=Image.BILINEAR)))


def test_policy_infer_builds_the_same_observation_as_training_on_the_ingested_frame(tmp_path):
    """Through ``Policy.infer`` itself: its model input for the raw 1280x720 request equals the
    observation training builds from the stored (ingested) images."""
    from robosteer_assets.vla import model
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import IMAGE_KEYS, get_config
    from robosteer_assets.vla.normalize import compute_norm_stats
    from robosteer_assets.vla.policy import Policy
    from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

    cfg = get_config("pi0_micro")
    res = cfg.vision.resolution
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(16, 8)), "actions": rng.normal(size=(16, 8))})
    tok = train_tiny_tokenizer(["pick up the red cube"], tmp_path / "tok.model", cfg.vocab_size)
    policy = Policy.from_checkpoint(save_checkpoint(tmp_path / "ckpt", cfg, model.init_params(cfg), stats,
                                                    tokenizer_path=tok))
    seen = []

    def sample(params, obs, noise):  # the model's input, captured instead of sampled
        seen.append(obs)
        return np.zeros((1, cfg.action_horizon, cfg.action_dim), np.float32)

    policy._sample = sample
    rec = make_recording(T=3, seed=23, image_size=(720, 1280), control_hz=15.0)
    ep_dir = write_episode(episode_dir_for(tmp_path / "demos", "pick_cube", rec.uuid), rec)
    ingest_task(tmp_path / "demos" / "pick_cube", tmp_path / "store",
                IngestConfig(read=ReadConfig(image_size=res, target_hz=None), min_episodes=1))
    store = EpisodeStore.open(tmp_path / "store")
    ext = _decoded(ep_dir / MP4_DIR / f"{rec.exterior_serial}.mp4")[1]
    wrist = _decoded(ep_dir / MP4_DIR / f"{rec.wrist_serial}.mp4")[1]
    state = np.asarray(store.arrays["state"][1], np.float64)
    policy.infer({"observation/exterior_image_1_left": ext, "observation/wrist_image_left": wrist,
                  "observation/joint_position": state[:7], "observation/gripper_position": state[7:],
                  "prompt": rec.instruction})
    trained = make_observation(cfg, policy.tokenizer, policy.norm_stats, np.asarray(store.arrays["images"][1:2]),
                               state[None], [rec.instruction])
    for key in IMAGE_KEYS:
        np.testing.assert_array_equal(np.asarray(seen[0].images[key]), trained.images[key])
    np.testing.assert_array_equal(np.asarray(seen[0].state), trained.state)


def test_stereo_frame_keeps_the_left_view_then_letterboxes_like_infer(tmp_path):
    store, ext, wrist = _ingest_one(tmp_path, (720, 2560))  # side-by-side stereo, 1280x720 per eye
    stored = np.asarray(store.arrays["images"][:])
    for t in range(3):
        # the client sends the left view (openpi's DROID loader reads the left camera)
        served = model_images(ext[t][:, :1280], wrist[t][:, :1280], RES)
        np.testing.assert_array_equal(stored[t:t + 1], served)


def test_square_sim_frames_are_unchanged():
    rng = np.random.default_rng(0)
    sim = rng.integers(0, 256, (RES, RES, 3), dtype=np.uint8)
    assert frame_to_image(sim, RES) is sim  # the simulator renders at the model size: identity
    big = rng.integers(0, 256, (448, 448, 3), dtype=np.uint8)
    plain = np.asarray(Image.fromarray(big).resize((RES, RES), resample=Image.BILINEAR))
    np.testing.assert_array_equal(frame_to_image(big, RES), plain)  # a square frame: plain resize, no bars


def _set_attr(store_dir, key, value):
    meta = store_dir / "episodes.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    if value is None:
        del doc["attributes"][key]
    else:
        doc["attributes"][key] = value
    meta.write_text(json.dumps(doc))


@pytest.mark.parametrize("value", [None, "center_crop"])
def test_store_from_another_image_path_is_stale(tmp_path, value):
    rec = make_recording(T=6, seed=22, image_size=32, control_hz=15.0)
    write_episode(episode_dir_for(tmp_path / "demos", "pick_cube", rec.uuid), rec)
    cfg = IngestConfig(read=ReadConfig(image_size=16, target_hz=None), min_episodes=1)
    ingest_task(tmp_path / "demos" / "pick_cube", tmp_path / "store", cfg)
    assert store_is_current(tmp_path / "store") and EpisodeStore.open(tmp_path / "store")
    copy = tmp_path / "old"
    shutil.copytree(tmp_path / "store", copy)
    _set_attr(copy, "image_resize", value)
    assert not store_is_current(copy)
    with pytest.raises(StaleStoreError, match=r"image_resize.*expected 'resize_with_pad'.*re-ingest") as info:
        EpisodeStore.open(copy)
    assert isinstance(info.value, E.StoreError) and str(copy) in str(info.value)
    # re-ingesting writes a current store in place of the stale one
    ingest_task(tmp_path / "demos" / "pick_cube", copy, cfg)
    assert store_is_current(copy) and EpisodeStore.open(copy).attrs["image_resize"] == RESIZE_METHOD
    assert not store_is_current(tmp_path / "missing")
