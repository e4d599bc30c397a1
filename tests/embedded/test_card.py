"""The base policy's model card and the shipped card's facts."""

import json

import pytest

from robosteer_assets.embedded.card import CARD_JSON, CARD_MD, wilson, write_card


def test_wilson_interval():
    lo, hi = wilson(0, 40)
    assert lo == 0.0 and hi == pytest.approx(0.0876, abs=1e-3)
    lo, hi = wilson(20, 40)
    assert lo == pytest.approx(0.352, abs=1e-3) and hi == pytest.approx(0.648, abs=1e-3)


def test_card_lists_command_corpus_training_curve_and_zero_shot(tmp_path):
    card = {"command": "robosteer pretrain --steps 5", "corpus": {"held_out_tasks": ["pick_cube"],
            "variations": ["none"], "action_noise": 0.08, "home_noise": 0.2}, "settings": ["a", "b"],
            "episodes": 7, "steps_of_data": 99, "train": {"batch_size": 4, "schedule": {"peak_lr": 1e-3},
            "augment": "color"}, "steps": 5, "wall_s": 120.0, "final_loss": 0.5,
            "loss_every": [[1, 2.0], [5, 0.5]], "zero_shot": {"pick_cube": {"successes": 3, "trials": 40}}}
    md = write_card(tmp_path, card).read_text()
    assert json.loads((tmp_path / CARD_JSON).read_text()) == card
    for text in ("robosteer pretrain --steps 5", "7 successful scripted demonstrations, 99 6 Hz steps, 2 settings",
                 "paper settings of pick_cube", "5 steps, batch 4", "wall time 2.0 min", "| 5 | 0.5000 |",
                 "| pick_cube | 3/40 | 0.03-0.20 |"):
        assert text in md, text
    assert (tmp_path / CARD_MD).is_file()


def test_shipped_card_matches_its_checkpoint():
    from robosteer_assets.embedded.base_policy import SHIPPED_BASE

    card = json.loads((SHIPPED_BASE / CARD_JSON).read_text())
    cfg = json.loads((SHIPPED_BASE / "robosteer_config.json").read_text())
    assert card["command"].startswith("robosteer pretrain")
    assert card["steps"] == cfg["extra"]["steps"] and card["episodes"] == cfg["extra"]["episodes"]
    assert set(card["zero_shot"]) == {"pick_cube", "cube_in_bowl", "press_button"}
    assert all(r["trials"] == 40 for r in card["zero_shot"].values())
