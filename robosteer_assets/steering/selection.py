"""Selecting the task's heads from k-NN scores (paper §3.2 eq. 5, A.1 "Number of
nearest neighbours", multi-task selection of Table 2).

For each candidate k: take the m heads with the lowest score at that k and
evaluate the *subset* by the same leave-other-episodes-out k-NN regression on
the subset's joint feature: the concatenation of the m per-head activations,
each L2-normalised first. With cosine similarity this is exactly the mean of
the m per-head cosine similarities (the concatenation of m unit vectors has
norm sqrt(m)); with the Euclidean metric it is the sum of per-head squared
distances between unit-normalised head vectors. Keep the k whose subset has the
lowest MSE and select the m best heads at that k (ties: lower layer, then head).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from robosteer_assets.steering.knn import KnnConfig, coefficient_of_variation, head_scores, knn_errors


@dataclass(frozen=True)
class CmaConfig:
    """The causal noise ablation selector (Table 3): Gaussian noise on one head's output at a time."""

    noise_std: float = field(default=1.0, metadata={"description": "std of the noise added to one head's output"})
    max_examples: int = field(default=64, metadata={"description": "keyframes whose loss rise is averaged"})
    batch_size: int = field(default=8, metadata={"description": "examples per model forward"})


@dataclass(frozen=True)
class SelectionConfig:
    """How the task's heads are chosen (paper eq. 5; the ablation selectors of Table 3 / A.2; the
    multi-task modes of Table 2)."""

    m: int = field(default=20, metadata={"description": "number of heads to select (paper: 20)"})
    selector: Literal["knn", "random", "classification", "cma"] = field(default="knn", metadata={
        "description": "knn (paper); random, classification (A.2), cma (causal noise ablation) for ablations"})
    multitask: Literal["none", "joint", "non_overlapping"] = field(default="none", metadata={
        "description": "k-NN only. joint: one head set from the pooled examples of `tasks` + this task; "
        "non_overlapping: each task its own m heads, union trained"})
    tasks: tuple[str, ...] = field(default=(), metadata={
        "description": "other tasks for multi-task selection / classification negatives (their head "
        "activations must exist)"})
    seed: int = field(default=0, metadata={"description": "seed of the random selector and of the CMA noise draws"})
    cma: CmaConfig = field(default_factory=CmaConfig)
    knn: KnnConfig = field(default_factory=KnnConfig, metadata={
        "description": "the k-NN regression of the subset search; in the pipeline, the one the head scores "
        "were computed with"})

    def __post_init__(self):
        if not isinstance(self.m, int) or self.m < 1:
            raise ValueError(f"SelectionConfig.m: expected a positive number of heads, found {self.m!r}")
        if self.multitask != "none" and self.selector != "knn":
            raise ValueError(f"SelectionConfig.multitask: expected 'none' with selector {self.selector!r} "
                             f"(multi-task selection is k-NN selection), found {self.multitask!r}")


@dataclass
class SelectionResult:
    heads: list[tuple[int, int]]  # (layer, head), best first
    k: int
    m: int
    subset_mse: dict[int, float]  # k -> MSE of that k's top-m subset
    metric: str
    position: str = "first_suffix"
    selector: str = "knn"
    cv: float = float("nan")  # coefficient of variation of head scores at the chosen k (Table 4)
    num_layers: int = 0
    num_heads: int = 0
    tasks: list[str] = field(default_factory=list)
    per_task: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # non-overlapping multi-task

    def to_json(self) -> str:
        d = asdict(self)
        d["heads"] = [list(h) for h in self.heads]
        d["subset_mse"] = {str(k): v for k, v in self.subset_mse.items()}
        d["per_task"] = {t: [list(h) for h in hs] for t, hs in self.per_task.items()}
        return json.dumps(d, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "SelectionResult":
        d = json.loads(text)
        d["heads"] = [tuple(h) for h in d["heads"]]
        d["subset_mse"] = {int(k): v for k, v in d["subset_mse"].items()}
        d["per_task"] = {t: [tuple(h) for h in hs] for t, hs in d.get("per_task", {}).items()}
        return cls(**d)

    def mask(self) -> np.ndarray:
        """Boolean [L, H] mask of the selected heads."""
        m = np.zeros((self.num_layers, self.num_heads), bool)
        for l, h in self.heads:
            m[l, h] = True
        return m


def top_heads(scores, k: int, m: int) -> list[tuple[int, int]]:
    """The m lowest-MSE heads at ``k`` from a (layer, head, k, mse) table."""
    sub = scores.filter(scores["k"] == k).sort(["mse", "layer", "head"])
    return [(int(l), int(h)) for l, h in zip(sub["layer"].to_list()[:m], sub["head"].to_list()[:m])]


def subset_features(activations, heads: list[tuple[int, int]]) -> np.ndarray:
    """[N, m*d]: the chosen heads' activations, each L2-normalised, concatenated."""
    a = np.stack([np.asarray(activations[:, l, h], np.float32) for l, h in heads], axis=1)  # [N, m, d]
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    return a.reshape(a.shape[0], -1)


def select_heads(activations, actions, episode_ids, cfg: SelectionConfig = SelectionConfig(), scores=None,
                 position: str = "first_suffix") -> tuple[SelectionResult, object]:
    """Score every head (unless ``scores`` is given), search k, select m heads.
    Returns (SelectionResult, scores DataFrame)."""
    a = np.asarray(activations)
    N, L, H, _ = a.shape
    if not 1 <= cfg.m <= L * H:
        raise ValueError(f"select_heads: m must be in 1..{L * H} (layers x heads), found {cfg.m}")
    if scores is None:
        scores = head_scores(a, actions, episode_ids, cfg.knn)
    subset_mse = {}
    for k in cfg.knn.ks:
        feats = subset_features(a, top_heads(scores, k, cfg.m))
        sub_cfg = dataclasses.replace(cfg.knn, ks=(k,), head_chunk=1)
        subset_mse[int(k)] = float(knn_errors(feats, actions, episode_ids, sub_cfg)[0, 0])
    best_k = min(subset_mse, key=lambda k: (subset_mse[k], k))
    at_k = scores.filter(scores["k"] == best_k)["mse"].to_numpy()
    result = SelectionResult(heads=top_heads(scores, best_k, cfg.m), k=best_k, m=cfg.m, subset_mse=subset_mse,
                             metric=cfg.knn.metric, position=position, cv=coefficient_of_variation(at_k),
                             num_layers=L, num_heads=H)
    return result, scores


def select_joint(datasets: dict[str, tuple], cfg: SelectionConfig = SelectionConfig(),
                 position: str = "first_suffix") -> tuple[SelectionResult, object]:
    """"Joint selection": one set of m heads from the pooled examples of several tasks.
    ``datasets`` = {task: (activations, actions, episode_ids)}; episode ids are made
    distinct across tasks."""
    acts, actions, eps = [], [], []
    for ti, (task, (a, y, e)) in enumerate(sorted(datasets.items())):
        acts.append(np.asarray(a))
        actions.append(np.asarray(y))
        eps.append(np.asarray(e).astype(np.int64) + ti * 1_000_000)
    res, scores = select_heads(np.concatenate(acts), np.concatenate(actions), np.concatenate(eps), cfg, position=position)
    res.tasks = sorted(datasets)
    return res, scores


def select_non_overlapping(datasets: dict[str, tuple], cfg: SelectionConfig = SelectionConfig(),
                           position: str = "first_suffix") -> SelectionResult:
    """"Non-overlapping": each task selects its own m heads; the union is trained, the
    per-task lists are kept."""
    per_task, ks, L, H, cvs = {}, {}, 0, 0, []
    for task, (a, y, e) in sorted(datasets.items()):
        r, _ = select_heads(a, y, e, cfg, position=position)
        per_task[task], ks[task], L, H = r.heads, r.k, r.num_layers, r.num_heads
        cvs.append(r.cv)
    union: list[tuple[int, int]] = []
    for hs in per_task.values():
        union += [h for h in hs if h not in union]
    return SelectionResult(heads=union, k=int(np.median(list(ks.values()))), m=cfg.m, subset_mse={},
                           metric=cfg.knn.metric, position=position, selector="knn_non_overlapping",
                           cv=float(np.mean(cvs)), num_layers=L, num_heads=H, tasks=sorted(datasets),
                           per_task=per_task)


def heatmap_png(scores, result: SelectionResult, title: str = "head scores (k-NN MSE)") -> bytes:
    """Fig. 4-style layers x heads heatmap of the scores at the chosen k, selected heads boxed."""
    from matplotlib.patches import Rectangle

    from robosteer_assets.common.plots import figure_png, new_figure

    sub = scores.filter(scores["k"] == result.k)
    grid = np.full((result.num_layers, result.num_heads), np.nan)
    for l, h, v in zip(sub["layer"].to_list(), sub["head"].to_list(), sub["mse"].to_list()):
        grid[l, h] = v
    fig, ax = new_figure(1.2 + 0.55 * result.num_heads, 1.0 + 0.32 * result.num_layers)
    im = ax.imshow(grid, cmap="viridis_r", aspect="auto", origin="lower")
    for l, h in result.heads:
        ax.add_patch(Rectangle((h - 0.5, l - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_xticks(range(result.num_heads))
    ax.set_title(f"{title}, k={result.k}; red = selected (m={result.m})")
    fig.colorbar(im, ax=ax, label="MSE (lower = more task-relevant)")
    return figure_png(fig)
