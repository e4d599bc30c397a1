"""Consistency of head selection (paper A.2, Figs 6-7): overlap of the top-m heads
between data subsets of one task and between tasks."""

from __future__ import annotations

import numpy as np


def overlap_pct(a: list, b: list) -> float:
    """|A ∩ B| / m in percent (m = len(a) = len(b))."""
    if len(a) != len(b) or not a:
        raise ValueError(f"overlap: expected two head lists of the same non-zero length, found {len(a)} and {len(b)}")
    return 100.0 * len(set(map(tuple, a)) & set(map(tuple, b))) / len(a)


def overlap_matrix(sets: dict[str, list]) -> tuple[list[str], np.ndarray]:
    names = list(sets)
    mat = np.array([[overlap_pct(sets[x], sets[y]) for y in names] for x in names])
    return names, mat


def episode_subsets(episode_ids, seeds=(42, 24)) -> dict[str, np.ndarray]:
    """Row masks of the paper's data variants: all demos, two random halves (seeds 42
    and 24), the first half and the last half of the episodes (in episode order)."""
    eps = np.unique(np.asarray(episode_ids))
    half = max(1, len(eps) // 2)
    ids = np.asarray(episode_ids)
    out = {"all": np.ones(len(ids), bool)}
    for s in seeds:
        pick = np.random.default_rng(s).choice(eps, size=half, replace=False)
        out[f"half-s{s}"] = np.isin(ids, pick)
    out["first-half"] = np.isin(ids, eps[:half])
    out["last-half"] = np.isin(ids, eps[-half:])
    return out


def heatmap_png(names: list[str], mat: np.ndarray, title: str) -> bytes:
    from robosteer_assets.common.plots import figure_png, new_figure

    fig, ax = new_figure(1.5 + 0.9 * len(names), 1.2 + 0.8 * len(names))
    im = ax.imshow(mat, vmin=0, vmax=100, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{mat[i, j]:.0f}", ha="center", va="center",
                    color="white" if mat[i, j] > 60 else "black", fontsize=8)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="overlap %")
    return figure_png(fig)
