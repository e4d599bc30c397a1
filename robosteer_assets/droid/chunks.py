"""Action chunks over the rows of an episode store.

The example at row ``r`` pairs the observation at ``r`` with the action chunk
``actions[r : r + horizon]``; indices past the last row of ``r``'s episode clamp to that
row (the final action repeats), as openpi's RLDS DROID loader does. Training
(``training.data``) and the CMA head scores (``steering.selectors``) build their chunks here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def episode_ends(episodes: Sequence[dict], num_rows: int, where: str = "episode store") -> np.ndarray:
    """int64 ``[num_rows]``: for every row, the row index of its episode's last step, from a store's
    ``attrs.episodes`` (``start`` / ``length`` per episode). Raises ``ValueError`` naming ``where``
    when the episodes leave rows uncovered."""
    ends = np.full(num_rows, -1, np.int64)
    for ep in episodes:
        start, length = int(ep["start"]), int(ep["length"])
        ends[start:start + length] = start + length - 1
    if num_rows == 0 or np.any(ends < 0):
        raise ValueError(f"{where}: expected episodes (attrs.episodes start/length) covering all {num_rows} rows, "
                         f"found {int(np.sum(ends < 0))} rows outside every episode")
    return ends


def chunk_indices(rows, horizon: int, episode_end) -> np.ndarray:
    """Row indices of the action chunks starting at ``rows``: shape ``rows.shape + (horizon,)``,
    ``min(r + j, episode_end)`` for ``j < horizon``. ``episode_end`` is each row's episode's last
    row (same shape as ``rows``, e.g. ``episode_ends(...)[rows]``)."""
    if horizon < 1:
        raise ValueError(f"chunk_indices: expected horizon >= 1, found {horizon}")
    rows = np.asarray(rows, np.int64)
    end = np.asarray(episode_end, np.int64)
    if end.shape != rows.shape:
        raise ValueError(f"chunk_indices: episode_end shape {end.shape} does not match rows shape {rows.shape}")
    if np.any(rows > end):
        raise ValueError("chunk_indices: a row lies past its episode's last row")
    return np.minimum(rows[..., None] + np.arange(horizon), end[..., None])
