"""The paper's evaluation grid: a 0.5 m x 0.28 m rectangle in front of the robot,
discretised into 5 x 8 = 40 cells (method.md, "Evaluation protocol").

Rows run along x (away from the robot, 0.28 m / 5 rows = 5.6 cm), columns along
y (the robot's right to left, 0.5 m / 8 columns = 6.25 cm). A trial places the
task's main object at a cell centre with a random yaw seeded by (seed, row, col);
demonstrations draw placements uniformly in the same rectangle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GridConfig:
    rows: int = 5
    cols: int = 8
    x_range: tuple[float, float] = (0.36, 0.64)  # 0.28 m, robot base at x = 0
    y_range: tuple[float, float] = (-0.25, 0.25)  # 0.5 m

    @property
    def num_cells(self) -> int:
        return self.rows * self.cols

    def cells(self) -> list[tuple[int, int]]:
        return [(r, c) for r in range(self.rows) for c in range(self.cols)]


DEFAULT_GRID = GridConfig()


def check_cell(row: int, col: int, grid: GridConfig = DEFAULT_GRID) -> tuple[int, int]:
    if not (isinstance(row, (int, np.integer)) and isinstance(col, (int, np.integer))):
        raise ValueError(f"grid cell: expected integer (row, col), found ({row!r}, {col!r})")
    if not (0 <= row < grid.rows and 0 <= col < grid.cols):
        raise ValueError(
            f"grid cell: expected row in [0, {grid.rows}) and col in [0, {grid.cols}), found ({row}, {col})"
        )
    return int(row), int(col)


def cell_center(row: int, col: int, grid: GridConfig = DEFAULT_GRID) -> tuple[float, float]:
    """(x, y) of the centre of cell (row, col), metres in the robot base frame."""
    row, col = check_cell(row, col, grid)
    (x0, x1), (y0, y1) = grid.x_range, grid.y_range
    x = x0 + (row + 0.5) * (x1 - x0) / grid.rows
    y = y0 + (col + 0.5) * (y1 - y0) / grid.cols
    return float(x), float(y)


def trial_yaw(seed: int, row: int, col: int, grid: GridConfig = DEFAULT_GRID) -> float:
    """The random yaw (rad, in [-pi, pi)) of the trial at (row, col), reproducible from ``seed``."""
    row, col = check_cell(row, col, grid)
    rng = np.random.default_rng([int(seed), row, col])
    return float(rng.uniform(-np.pi, np.pi))


def sample_placement(rng: np.random.Generator, grid: GridConfig = DEFAULT_GRID) -> tuple[float, float, float]:
    """A demonstration placement (x, y, yaw) drawn uniformly over the grid rectangle."""
    x = rng.uniform(*grid.x_range)
    y = rng.uniform(*grid.y_range)
    yaw = rng.uniform(-np.pi, np.pi)
    return float(x), float(y), float(yaw)
