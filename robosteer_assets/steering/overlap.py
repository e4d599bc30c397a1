"""Consistency of head selection (paper A.2, Figs 6-7): overlap of the top-m heads
between data subsets of one task and between tasks.

``overlap_report`` is the whole procedure for one task: score the heads again on
each data variant (all demos, two random halves, first and last half of the
episodes) with the k the task's selection chose and the k-NN config its head
scores were computed with, take the top-m heads of each variant for every m,
and compare the variants pairwise; then compare the task's selected heads with
the other tasks' selections of the same size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class OverlapConfig:
    """The data variants and head-set sizes compared (paper Figs 6-7)."""

    top_m: tuple[int, ...] = field(default=(20, 40), metadata={
        "description": "sizes of the top-m head sets compared across data subsets (paper: 20 and 40)"})
    half_seeds: tuple[int, ...] = field(default=(42, 24), metadata={
        "description": "seeds of the random halves of the episodes (paper: 42 and 24)"})

    def __post_init__(self):
        if not self.top_m or min(self.top_m) < 1:
            raise ValueError(f"OverlapConfig.top_m: expected positive head counts, found {self.top_m!r}")


def overlap_report(cfg: OverlapConfig, *, activations: str, scores: str, selected: str,
                   task_selections: dict[str, str] | None = None, out: str = "") -> dict:
    """The overlap analysis of one task (module docstring): ``{"top{m}_subsets": {"names", "overlap_pct"},
    ..., "tasks": {...}}``, written as JSON to ``out`` when given. ``selected`` is the task's selection
    JSON, ``task_selections`` {task: selection JSON} of every task; ``tasks`` compares those with as
    many heads as this task's and is there when at least two do."""
    import dataclasses

    from robosteer_assets.common.atomic import write_text_atomic
    from robosteer_assets.steering.activations import ActivationStore
    from robosteer_assets.steering.knn import head_scores, read_scores
    from robosteer_assets.steering.selection import SelectionResult, top_heads

    _, knn = read_scores(scores)
    acts, actions, eps = ActivationStore.open(activations).load()
    own = SelectionResult.from_json(open(selected).read())
    k = own.k or 20
    n_heads = acts.shape[1] * acts.shape[2]
    sets: dict[int, dict[str, list]] = {m: {} for m in cfg.top_m}
    for name, rows in episode_subsets(eps, cfg.half_seeds).items():
        n_other = int(rows.sum() - np.bincount(eps[rows]).max())
        kk = max(1, min(k, n_other))
        table = head_scores(acts[rows], actions[rows], eps[rows], dataclasses.replace(knn, ks=(kk,)))
        for m in cfg.top_m:
            sets[m][name] = top_heads(table, kk, min(m, n_heads))
    report: dict = {}
    for m in cfg.top_m:
        names, mat = overlap_matrix(sets[m])
        report[f"top{m}_subsets"] = {"names": names, "overlap_pct": mat.round(1).tolist()}
    tasks = {}
    for task, path in sorted((task_selections or {}).items()):
        heads = SelectionResult.from_json(open(path).read()).heads
        if len(heads) == len(own.heads):
            tasks[task] = heads
    if len(tasks) > 1:
        names, mat = overlap_matrix(tasks)
        report["tasks"] = {"names": names, "overlap_pct": mat.round(1).tolist()}
    if out:
        write_text_atomic(out, json.dumps(report, indent=2))
    return report


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
