import numpy as np
import pytest

from robosteer_assets.sim.grid import DEFAULT_GRID, GridConfig, cell_center, sample_placement, trial_yaw


def test_grid_is_the_papers_5x8_over_0p5_by_0p28():
    g = DEFAULT_GRID
    assert g.num_cells == 40 and len(set(g.cells())) == 40
    centres = np.array([cell_center(r, c) for r, c in g.cells()])
    # cell pitch: 0.28 m / 5 rows along x, 0.5 m / 8 columns along y
    assert np.allclose(np.diff(sorted(set(centres[:, 0].round(6)))), 0.28 / 5)
    assert np.allclose(np.diff(sorted(set(centres[:, 1].round(6)))), 0.5 / 8)
    assert centres[:, 0].min() == pytest.approx(0.36 + 0.028) and centres[:, 0].max() == pytest.approx(0.64 - 0.028)
    assert centres[:, 1].min() == pytest.approx(-0.25 + 0.03125)
    assert centres[:, 1].max() == pytest.approx(0.25 - 0.03125)
    assert (g.x_range[1] - g.x_range[0]) * (g.y_range[1] - g.y_range[0]) == pytest.approx(0.5 * 0.28)


def test_trial_yaw_is_seeded_per_cell():
    assert trial_yaw(0, 1, 2) == trial_yaw(0, 1, 2)
    yaws = {trial_yaw(0, r, c) for r, c in DEFAULT_GRID.cells()}
    assert len(yaws) == 40 and all(-np.pi <= y < np.pi for y in yaws)
    assert trial_yaw(1, 1, 2) != trial_yaw(0, 1, 2)


@pytest.mark.parametrize("cell", [(5, 0), (0, 8), (-1, 3)])
def test_bad_cell_names_the_range(cell):
    with pytest.raises(ValueError, match=r"row in \[0, 5\) and col in \[0, 8\)"):
        cell_center(*cell)


def test_sample_placement_stays_in_the_rectangle():
    rng = np.random.default_rng(0)
    g = GridConfig()
    pts = np.array([sample_placement(rng, g) for _ in range(200)])
    assert pts[:, 0].min() >= 0.36 and pts[:, 0].max() <= 0.64
    assert pts[:, 1].min() >= -0.25 and pts[:, 1].max() <= 0.25
