"""DROID transforms (openpi_facts §3.1, §4.1): camera mapping, image prep, normalisation + padding,
pi0.5 prompt from the normalised state, and the output inverse."""

import numpy as np
import pytest

from robosteer_assets.common.images import resize_with_pad
from robosteer_assets.vla.config import IMAGE_KEYS, get_config
from robosteer_assets.vla.normalize import compute_norm_stats, normalize
from robosteer_assets.vla.tokenizer import PromptTokenizer, train_tiny_tokenizer
from robosteer_assets.vla.transforms import (
    TransformError, make_observation, make_training_batch, prepare_images, unnormalize_actions)

PROMPTS = ["put the marker in the cup", "open the drawer"]


@pytest.fixture(scope="module")
def tok_file(tmp_path_factory):
    return train_tiny_tokenizer(PROMPTS, tmp_path_factory.mktemp("tok") / "t.model", get_config("pi05_tiny").vocab_size)


def _batch(B=2, S=224, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (B, 2, S, S, 3), dtype=np.uint8)
    state = rng.normal(size=(B, 8)) * 0.3
    return images, state


def _stats(seed=1):
    rng = np.random.default_rng(seed)
    return compute_norm_stats({"state": rng.normal(size=(200, 8)) * 0.5 + 0.1,
                               "actions": rng.normal(size=(200, 8)) * 2 - 1})


def test_resize_with_pad_keeps_aspect_and_centres_on_black():
    img = np.full((180, 320, 3), 255, np.uint8)
    out = resize_with_pad(img, 224, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    # ratio = max(320/224, 180/224); new size (126, 224); offset int(98 / 2) = 49
    rows = np.where(out[:, 112, 0] > 0)[0]
    assert rows.min() == 49 and rows.max() == 49 + 126 - 1
    assert (out[:49] == 0).all() and (out[175:] == 0).all()
    same = np.zeros((224, 224, 3), np.uint8)
    assert resize_with_pad(same, 224, 224) is same  # no resize when already the model size
    x = prepare_images(np.array([[[[[0, 128, 255]]]]], np.uint8), 1)
    np.testing.assert_allclose(x.ravel(), [-1.0, 128 / 255 * 2 - 1, 1.0], atol=1e-6)
    with pytest.raises(TransformError, match="expected uint8"):
        prepare_images(np.zeros((1, 2, 4, 4, 3), np.float32), 4)


@pytest.mark.parametrize("name", ["pi0_tiny", "pi05_tiny"])
def test_make_observation_maps_droid_cameras_and_normalises_state(tok_file, name):
    cfg = get_config(name)
    tok = PromptTokenizer.for_model(cfg, tok_file)
    images, state = _batch(S=cfg.vision.resolution)  # at the model's size: no resize
    stats = _stats()
    obs = make_observation(cfg, tok, stats, images, state, PROMPTS)
    assert list(obs.images) == list(IMAGE_KEYS)
    np.testing.assert_allclose(obs.images["base_0_rgb"], images[:, 0] / 255.0 * 2 - 1, atol=1e-6)
    np.testing.assert_allclose(obs.images["left_wrist_0_rgb"], images[:, 1] / 255.0 * 2 - 1, atol=1e-6)
    assert (obs.images["right_wrist_0_rgb"] == -1).all()
    assert obs.image_masks["base_0_rgb"].all() and obs.image_masks["left_wrist_0_rgb"].all()
    assert not obs.image_masks["right_wrist_0_rgb"].any()
    # z-score for pi0, quantile for pi0.5; zero padding to action_dim after normalising
    s_norm = normalize(state, stats["state"], use_quantiles=cfg.pi05)
    assert obs.state.shape == (2, cfg.action_dim) and obs.state.dtype == np.float32
    np.testing.assert_allclose(obs.state[:, :8], s_norm, rtol=1e-6)
    assert (obs.state[:, 8:] == 0).all()
    assert obs.tokenized_prompt.shape == (2, cfg.max_token_len) and obs.tokenized_prompt.dtype == np.int32
    for i, p in enumerate(PROMPTS):
        ids, mask = tok.tokenize(p, s_norm[i] if cfg.pi05 else None)
        np.testing.assert_array_equal(obs.tokenized_prompt[i], ids)
        np.testing.assert_array_equal(obs.tokenized_prompt_mask[i], mask)
    if cfg.pi05:  # the state reaches the model through the prompt
        text = tok.decode(obs.tokenized_prompt[0])
        assert text.startswith("Task: put the marker in the cup, State: ") and text.endswith(";\nAction: ")
        assert not obs.tokenized_prompt_mask[:, -1].any()  # fits max_token_len, nothing truncated


def test_small_images_are_resized_and_training_actions_round_trip(tok_file):
    cfg = get_config("pi05_tiny")
    tok = PromptTokenizer.for_model(cfg, tok_file)
    images, state = _batch(S=80)
    stats = _stats()
    rng = np.random.default_rng(5)
    actions = rng.normal(size=(2, cfg.action_horizon, 8))
    obs, a_norm = make_training_batch(cfg, tok, stats, images, state, PROMPTS, actions)
    S = cfg.vision.resolution
    assert obs.images["base_0_rgb"].shape == (2, S, S, 3)
    assert a_norm.shape == (2, cfg.action_horizon, cfg.action_dim) and a_norm.dtype == np.float32
    assert (a_norm[..., 8:] == 0).all()
    np.testing.assert_allclose(a_norm[..., :8], normalize(actions, stats["actions"], True), rtol=1e-5, atol=1e-6)
    back = unnormalize_actions(cfg, stats, a_norm)
    assert back.shape == (2, cfg.action_horizon, 8)
    np.testing.assert_allclose(back, actions, rtol=1e-5, atol=1e-5)
    # pi0 (z-score): the same inverse
    cfg0 = get_config("pi0_tiny")
    _, a0 = make_training_batch(cfg0, PromptTokenizer.for_model(cfg0, tok_file), stats, images, state, PROMPTS,
                                actions)
    np.testing.assert_allclose(unnormalize_actions(cfg0, stats, a0), actions, rtol=1e-5, atol=1e-5)


def test_bad_inputs_name_the_field(tok_file):
    cfg = get_config("pi0_tiny")
    tok = PromptTokenizer.for_model(cfg, tok_file)
    images, state = _batch()
    stats = _stats()
    with pytest.raises(TransformError, match=r"state: expected \[B, 8\]"):
        make_observation(cfg, tok, stats, images, state[:, :7], PROMPTS)
    with pytest.raises(TransformError, match="images: expected"):
        make_observation(cfg, tok, stats, images[:, :1], state, PROMPTS)
    with pytest.raises(TransformError, match="prompts: expected 2 prompts"):
        make_observation(cfg, tok, stats, images, state, PROMPTS[:1])
    with pytest.raises(TransformError, match="norm_stats: expected key 'state'"):
        make_observation(cfg, tok, {"actions": stats["actions"]}, images, state, PROMPTS)
    with pytest.raises(TransformError, match=r"actions: expected \[B=2, T_a=10, 8\]"):
        make_training_batch(cfg, tok, stats, images, state, PROMPTS, np.zeros((2, 5, 8)))
    bad = state.copy()
    bad[0, 0] = np.nan
    with pytest.raises(TransformError, match="NaN"):
        make_observation(cfg, tok, stats, images, bad, PROMPTS)
