import numpy as np
from PIL import Image

from robosteer_assets.cli import main


def test_sim_render_writes_both_cameras_side_by_side(tmp_path):
    out = tmp_path / "start.png"
    assert main(["sim", "render", "--task", "push_cup", "--out", str(out), "--image-size", "64"]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (64, 128, 3)
    assert img[:, :64].std() > 5 and img[:, 64:].std() > 5


def test_sim_demos_writes_episodes(tmp_path, capsys):
    rc = main(["sim", "demos", "--task", "press_button", "--episodes", "1", "--out", str(tmp_path), "--seed", "2",
               "--image-size", "64"])
    assert rc == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "press_button/success/" in printed[0]
    assert (tmp_path / "press_button" / "success").is_dir()


def test_sim_rejects_unknown_task(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["sim", "demos", "--task", "fly", "--episodes", "1", "--out", "/tmp/x"])
    assert "invalid choice: 'fly'" in capsys.readouterr().err


def test_cli_choices_match_the_registries():
    from robosteer_assets.sim.cli import TASK_NAMES, VARIATION_NAMES
    from robosteer_assets.sim.tasks import TASKS
    from robosteer_assets.sim.variations import VARIATIONS

    assert set(TASK_NAMES) == set(TASKS) and set(VARIATION_NAMES) == set(VARIATIONS)
