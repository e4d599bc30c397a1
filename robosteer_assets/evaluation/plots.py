"""Pictures of evaluation results: the 5 x 8 success heatmap of one (task, method) evaluation and
the method comparison (success per task and method, the paper's Table 1 as bars)."""

from __future__ import annotations

import numpy as np

from robosteer_assets.common.plots import figure_png, new_figure

METHOD_ORDER = ("zero_shot", "full_lora", "steering")
METHOD_LABELS = {"zero_shot": "zero-shot", "full_lora": "full-head LoRA", "steering": "Robotic Steering"}


def grid_heatmap_png(success: np.ndarray, title: str) -> bytes:
    """``success`` [rows, cols] in [0, 1] (NaN = no trial); rows run away from the robot (x),
    columns from the robot's right to its left (y), as ``sim.grid``."""
    success = np.asarray(success, dtype=float)
    fig, ax = new_figure(1.0 + 0.6 * success.shape[1], 0.9 + 0.6 * success.shape[0])
    im = ax.imshow(success, vmin=0.0, vmax=1.0, cmap="RdYlGn", origin="lower")
    for (r, c), v in np.ndenumerate(success):
        ax.text(c, r, "–" if np.isnan(v) else f"{v:.0%}" if 0 < v < 1 else ("✓" if v == 1 else "✗"),
                ha="center", va="center", fontsize=8)
    ax.set_xticks(range(success.shape[1]))
    ax.set_yticks(range(success.shape[0]))
    ax.set_xlabel("grid column (robot's right → left)")
    ax.set_ylabel("grid row (near → far)")
    n = int(np.isfinite(success).sum())
    ax.set_title(f"{title}: {np.nansum(success) / max(n, 1):.0%} of {n} cells", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    return figure_png(fig)


def method_comparison_png(rows: list[dict], title: str = "success over the 40 grid placements") -> bytes:
    """Grouped bars: one group per (task, variation), one bar per method; ``rows`` carry
    ``task, variation, method, success_pct`` (``sql/method_comparison.sql``)."""
    groups = sorted({(r["task"], r["variation"]) for r in rows})
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in rows)]
    methods += sorted({r["method"] for r in rows} - set(methods))
    val = {(r["task"], r["variation"], r["method"]): float(r["success_pct"]) for r in rows}
    fig, ax = new_figure(max(4.0, 1.6 * len(groups) + 1.5), 3.5)
    width = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        xs = np.arange(len(groups)) + (i - (len(methods) - 1) / 2) * width
        ys = [val.get((t, v, m), np.nan) for t, v in groups]
        bars = ax.bar(xs, ys, width, label=METHOD_LABELS.get(m, m))
        for b, y in zip(bars, ys):
            if np.isfinite(y):
                ax.text(b.get_x() + b.get_width() / 2, y + 1, f"{y:.0f}", ha="center", fontsize=7)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([t if v == "none" else f"{t}\n({v})" for t, v in groups], fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success %")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return figure_png(fig)
