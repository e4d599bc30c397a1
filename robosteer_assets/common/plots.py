"""Matplotlib (Agg) figures rendered to PNG bytes or a markdown image for Dagster metadata."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def figure_png(fig, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def png_markdown(png: bytes, alt: str = "plot") -> str:
    """A markdown image with the PNG inlined (Dagster has no image metadata type)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def new_figure(width: float = 6.0, height: float = 4.0):
    return plt.subplots(figsize=(width, height))


def loss_curve_png(losses, title: str) -> bytes:
    """Flow-matching loss per step (training metadata and run folders)."""
    fig, ax = new_figure(6, 3.5)
    ax.plot(range(1, len(losses) + 1), losses, lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax.set_title(title)
    return figure_png(fig)
