"""The base policy's corpus (colour family without the paper's target settings), the recorder's noise
injection, and the shipped-checkpoint install check."""

import json

import numpy as np
import pytest

from robosteer_assets.embedded.corpus import PAPER_TARGETS, CorpusConfig, corpus_settings
from robosteer_assets.sim.tasks import COLORS, TASKS, all_instructions


def test_corpus_leaves_out_the_paper_settings_of_the_targets():
    settings = corpus_settings(CorpusConfig())
    instructions = {s.instruction for s in settings}
    for task in PAPER_TARGETS:
        assert TASKS[task].instruction not in instructions
    # the same skills with other colours are there
    assert {"pick up blue cube", "press yellow button hard", "place green cube in blue bowl"} <= instructions
    assert "push red cup to red bowl" in instructions and "place marker in mug" in instructions
    assert "pick mug" not in instructions  # the paper's unseen task
    assert len({s.folder for s in settings}) == len(settings)
    n_colors = len(COLORS)
    assert sum(s.task == "cube_in_bowl" for s in settings) == n_colors ** 2 - 1
    assert CorpusConfig().episodes_for("push_cup") == 96
    assert CorpusConfig().episodes_for("pick_cube") == 600 and CorpusConfig().episodes_for("press_button") == 480


def test_corpus_errors_name_the_field():
    with pytest.raises(ValueError, match="unknown simulated tasks"):
        corpus_settings(CorpusConfig(tasks=("fly",)))
    with pytest.raises(ValueError, match="every setting is held out"):
        corpus_settings(CorpusConfig(tasks=("marker_in_mug",), held_out_tasks=("marker_in_mug",)))
    with pytest.raises(ValueError, match="episodes_per_task"):
        CorpusConfig(episodes_per_task=0)


def test_instructions_follow_the_colours():
    t = TASKS["cube_in_bowl"]
    assert t.instruction_for(None) == t.instruction
    assert t.instruction_for({"red_bowl": "blue"}) == "place green cube in blue bowl"
    assert "place yellow cube in yellow bowl" in all_instructions()
    with pytest.raises(ValueError, match="colour slots"):
        TASKS["marker_in_mug"].instruction_for({"mug": "red"})


def test_env_colours_the_objects_and_names_them():
    from robosteer_assets.sim.env import PROMPT_KEY, TabletopEnv

    env = TabletopEnv("pick_cube", image_size=32, render_images=False, colors={"red_cube": "blue"})
    assert env.observation()[PROMPT_KEY] == "pick up blue cube"
    rgba = env.model.geom_rgba[env.model.geom("red_cube_geom").id]
    assert np.allclose(rgba, COLORS["blue"])
    with pytest.raises(ValueError, match="not in task"):
        TabletopEnv("pick_cube", render_images=False, colors={"mug": "blue"})
    with pytest.raises(ValueError, match="expected one of"):
        TabletopEnv("pick_cube", render_images=False, colors={"red_cube": "purple"})


def test_noise_injection_keeps_the_expert_label():
    from robosteer_assets.sim.env import TabletopEnv, run_episode
    from robosteer_assets.sim.recorder import RecordConfig, action_perturbation

    cfg = RecordConfig(action_noise=0.1, home_noise=0.2)
    assert action_perturbation(RecordConfig(), 1) is None
    a, b = action_perturbation(cfg, 5), action_perturbation(cfg, 5)
    x = np.full(8, 0.2)
    assert np.array_equal(a(x), b(x))  # deterministic in the seed
    env = TabletopEnv("pick_cube", render_images=False)
    env.reset(seed=5, home_noise=0.2)
    home = np.asarray(env.cfg.control.home_qpos)
    assert np.abs(env.commanded_joint_positions() - home).max() > 0.01
    labels, executed = [], []
    perturb = action_perturbation(cfg, 5)

    def exec_and_log(act):
        out = perturb(act)
        executed.append(out)
        return out

    run_episode(env, on_step=lambda obs, act: labels.append(np.array(act)), perturb=exec_and_log, max_steps=5)
    labels, executed = np.array(labels), np.array(executed)
    assert labels.shape == executed.shape == (5, 8)
    assert np.abs(labels[:, :7] - executed[:, :7]).max() > 0  # the arm got noise, the label did not
    assert np.array_equal(labels[:, 7], executed[:, 7])  # the gripper is never perturbed
    with pytest.raises(ValueError, match="noise_persistence"):
        RecordConfig(noise_persistence=1.0)


def test_install_checks_the_model_config(tmp_path):
    from robosteer_assets.embedded.base_policy import config_hash, install_base_policy
    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.normalize import compute_norm_stats

    cfg = get_config("pi0_micro")
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(32, 8)), "actions": rng.normal(size=(32, 8))})
    src = save_checkpoint(tmp_path / "src", cfg, M.init_params(cfg, 0), stats)
    with pytest.raises(ValueError, match="rebuild it with"):
        install_base_policy(src, tmp_path / "dst", model="pi0_tiny")
    assert not (tmp_path / "dst").exists()
    first = install_base_policy(src, tmp_path / "dst", model="pi0_micro")
    again = install_base_policy(src, tmp_path / "dst", model="pi0_micro")
    assert first["copied"] and not again["copied"] and first["config_hash"] == config_hash(cfg)
    assert json.loads((tmp_path / "dst" / "robosteer_config.json").read_text())["config"]["name"] == "pi0_micro"
    with pytest.raises(FileNotFoundError, match="robosteer pretrain"):
        install_base_policy(tmp_path / "nothing", tmp_path / "dst2")


def test_parallel_recording_gives_the_same_corpus(tmp_path):
    """Each setting has its own seeds: two workers record the episodes one worker records, in the
    settings' order, and a finished setting is not recorded again."""
    from robosteer_assets.droid.reader import ReadConfig, read_episode
    from robosteer_assets.embedded.corpus import record_corpus

    cfg = CorpusConfig(tasks=("press_button",), held_out_tasks=(), episodes_per_task=len(COLORS),
                       variations=("none",), image_size=32)
    one = record_corpus(tmp_path / "one", cfg, workers=1)
    two = record_corpus(tmp_path / "two", cfg, workers=2)
    assert list(one) == list(two) == [s.folder for s in corpus_settings(cfg)]
    for folder in one:
        a, b = (read_episode(d, ReadConfig(image_size=32)) for d in (one[folder][0], two[folder][0]))
        assert np.array_equal(a.actions, b.actions) and a.instruction == b.instruction
    stamp = {f: [d.stat().st_mtime_ns for d in dirs] for f, dirs in two.items()}
    again = record_corpus(tmp_path / "two", cfg, workers=2)
    assert {f: [d.stat().st_mtime_ns for d in dirs] for f, dirs in again.items()} == stamp
    with pytest.raises(ValueError, match="workers"):
        record_corpus(tmp_path / "three", cfg, workers=0)
