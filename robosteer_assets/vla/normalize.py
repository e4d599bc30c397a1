"""Normalisation statistics and the two normalisations of openpi (openpi_facts.md §2.4).

``norm_stats.json`` is openpi's exact file: ``{"norm_stats": {"state": {"mean": [...], "std": [...],
"q01": [...], "q99": [...]}, "actions": {...}}}`` with indent 2. Statistics are computed over the
robot's own dims (8 for DROID: 7 joints + gripper), before padding to ``action_dim``.

* z-score (pi0):      x̂ = (x − mean) / (std + 1e-6);           x = x̂ · (std + 1e-6) + mean
* quantile (pi0.5):   x̂ = 2 (x − q01) / (q99 − q01 + 1e-6) − 1; x = (x̂ + 1) / 2 · (q99 − q01 + 1e-6) + q01

``normalize`` slices the stats to the data's last dim (stats may be longer). ``unnormalize`` handles
data longer than the stats (the model's padded ``action_dim``): z-score pads mean → 0 / std → 1,
quantile leaves those extra dims untouched. No clipping anywhere (as openpi).

Statistics: mean and std from running sums (float64) of x and x² — std = sqrt(max(0, E[x²] − E[x]²)),
as openpi. Quantiles: openpi approximates them with 5000-bin histograms (q = left edge of the first bin
whose cumulative count reaches q·N); we keep the values and take the **exact** empirical quantile with
the same definition (``numpy.quantile(method="inverted_cdf")``: the smallest sample x with
CDF(x) ≥ q). Our few-shot data sets are small (thousands of steps), so exact is cheap.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robosteer_assets.common.atomic import write_text_atomic

EPS = 1e-6
NORM_STATS_FILE = "norm_stats.json"
QUANTILES = (0.01, 0.99)


class NormStatsError(ValueError):
    """A norm_stats.json (or a stats object) that does not have the expected form."""


@dataclass(frozen=True)
class NormStats:
    """Per-dimension statistics of one data key (``state`` or ``actions``)."""

    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray | None = None
    q99: np.ndarray | None = None

    def __post_init__(self):
        for name in ("mean", "std", "q01", "q99"):
            v = getattr(self, name)
            if v is None:
                continue
            a = np.asarray(v, np.float64)
            if a.ndim != 1:
                raise NormStatsError(f"NormStats.{name}: expected a 1-D vector, found shape {a.shape}")
            if not np.all(np.isfinite(a)):
                raise NormStatsError(f"NormStats.{name}: expected finite values, found {a.tolist()}")
            object.__setattr__(self, name, a)
        dims = {name: getattr(self, name).shape[0] for name in ("mean", "std", "q01", "q99")
                if getattr(self, name) is not None}
        if len(set(dims.values())) != 1:
            raise NormStatsError(f"NormStats: all vectors must have the same length, found {dims}")
        if (self.q01 is None) != (self.q99 is None):
            raise NormStatsError("NormStats: q01 and q99 must be given together")

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def has_quantiles(self) -> bool:
        return self.q01 is not None

    def to_json_dict(self) -> dict:
        return {k: (None if getattr(self, k) is None else [float(x) for x in getattr(self, k)])
                for k in ("mean", "std", "q01", "q99")}


# ----------------------------------------------------------------------------- computing

class RunningStats:
    """Accumulate batches ``[..., D]`` of one key; ``get()`` returns its :class:`NormStats`."""

    def __init__(self):
        self.count = 0
        self._sum: np.ndarray | None = None
        self._sumsq: np.ndarray | None = None
        self._values: list[np.ndarray] = []

    def update(self, batch: np.ndarray) -> None:
        x = np.asarray(batch, np.float64)
        if x.ndim == 1:
            x = x[None]
        x = x.reshape(-1, x.shape[-1])
        if self._sum is not None and x.shape[1] != self._sum.shape[0]:
            raise NormStatsError(f"RunningStats.update: expected last dim {self._sum.shape[0]}, found {x.shape[1]}")
        if not np.all(np.isfinite(x)):
            raise NormStatsError("RunningStats.update: batch contains NaN or inf")
        if self._sum is None:
            self._sum = np.zeros(x.shape[1])
            self._sumsq = np.zeros(x.shape[1])
        self.count += x.shape[0]
        self._sum += x.sum(0)
        self._sumsq += (x * x).sum(0)
        self._values.append(x)

    def get(self) -> NormStats:
        if self.count < 2:
            raise NormStatsError(f"RunningStats: need at least 2 samples to compute statistics, found {self.count}")
        mean = self._sum / self.count
        var = np.maximum(0.0, self._sumsq / self.count - mean * mean)
        values = np.concatenate(self._values, axis=0)
        q01, q99 = (np.quantile(values, q, axis=0, method="inverted_cdf") for q in QUANTILES)
        return NormStats(mean=mean, std=np.sqrt(var), q01=q01, q99=q99)


def compute_norm_stats(data: dict[str, np.ndarray]) -> dict[str, NormStats]:
    """Statistics per key of ``data`` (e.g. ``{"state": [N, 8], "actions": [N, 8]}``)."""
    out = {}
    for key, arr in data.items():
        rs = RunningStats()
        rs.update(arr)
        out[key] = rs.get()
    return out


# ----------------------------------------------------------------------------- file format

def norm_stats_to_json(stats: dict[str, NormStats]) -> str:
    return json.dumps({"norm_stats": {k: v.to_json_dict() for k, v in stats.items()}}, indent=2)


def norm_stats_from_json(text: str, source: str = "norm_stats.json") -> dict[str, NormStats]:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise NormStatsError(f"{source}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or not isinstance(d.get("norm_stats"), dict):
        raise NormStatsError(f"{source}: expected an object with key 'norm_stats' (openpi format), "
                             f"found {type(d).__name__} with keys {sorted(d) if isinstance(d, dict) else '-'}")
    out = {}
    for key, v in d["norm_stats"].items():
        if not isinstance(v, dict) or "mean" not in v or "std" not in v:
            raise NormStatsError(f"{source}: norm_stats.{key}: expected an object with 'mean' and 'std' "
                                 f"(and optional 'q01', 'q99'), found {v!r:.200}")
        try:
            out[key] = NormStats(mean=np.asarray(v["mean"], np.float64), std=np.asarray(v["std"], np.float64),
                                 q01=None if v.get("q01") is None else np.asarray(v["q01"], np.float64),
                                 q99=None if v.get("q99") is None else np.asarray(v["q99"], np.float64))
        except (NormStatsError, ValueError, TypeError) as e:
            raise NormStatsError(f"{source}: norm_stats.{key}: {e}") from None
    return out


def save_norm_stats(directory: str | os.PathLike, stats: dict[str, NormStats]) -> Path:
    """Write ``<directory>/norm_stats.json`` atomically; returns its path."""
    path = Path(directory) / NORM_STATS_FILE
    write_text_atomic(path, norm_stats_to_json(stats))
    return path


def load_norm_stats(directory: str | os.PathLike) -> dict[str, NormStats]:
    """Read ``<directory>/norm_stats.json`` (or the file itself if a file path is given)."""
    path = Path(directory)
    if path.is_dir():
        path = path / NORM_STATS_FILE
    if not path.is_file():
        raise NormStatsError(f"{path}: norm stats file not found")
    return norm_stats_from_json(path.read_text(), source=str(path))


# ----------------------------------------------------------------------------- (un)normalising

def use_quantile_norm(pi05: bool) -> bool:
    """openpi: quantile normalisation for every model type except pi0 (z-score)."""
    return bool(pi05)


def _require_quantiles(stats: NormStats, what: str) -> None:
    if not stats.has_quantiles:
        raise NormStatsError(f"{what}: quantile normalisation (pi0.5) needs q01/q99 in the norm stats, found none")


def normalize(x, stats: NormStats, use_quantiles: bool):
    """Normalise ``x [..., d]`` with the first ``d`` dims of ``stats`` (``d <= stats.dim``)."""
    x = np.asarray(x)
    d = x.shape[-1]
    if d > stats.dim:
        raise NormStatsError(f"normalize: data has {d} dims but the norm stats only {stats.dim}")
    if use_quantiles:
        _require_quantiles(stats, "normalize")
        q01, q99 = stats.q01[:d], stats.q99[:d]
        return (x - q01) / (q99 - q01 + EPS) * 2.0 - 1.0
    return (x - stats.mean[:d]) / (stats.std[:d] + EPS)


def unnormalize(x, stats: NormStats, use_quantiles: bool):
    """Inverse of :func:`normalize`; dims of ``x`` beyond the stats: z-score pads mean 0 / std 1,
    quantile leaves them untouched."""
    x = np.asarray(x)
    d = x.shape[-1]
    if use_quantiles:
        _require_quantiles(stats, "unnormalize")
        k = min(d, stats.dim)
        q01, q99 = stats.q01[:k], stats.q99[:k]
        head = (x[..., :k] + 1.0) / 2.0 * (q99 - q01 + EPS) + q01
        return np.concatenate([head, x[..., k:]], axis=-1) if k < d else head
    mean = np.zeros(d)
    std = np.ones(d)
    k = min(d, stats.dim)
    mean[:k], std[:k] = stats.mean[:k], stats.std[:k]
    return x * (std + EPS) + mean


def max_abs_normalized(x, stats: NormStats, use_quantiles: bool) -> float:
    """Largest |x̂| — a quick check for the "tiny std / q99−q01 blows up" failure of openpi's README."""
    v = np.abs(normalize(x, stats, use_quantiles))
    return float(v.max()) if v.size else math.nan
