"""k-NN regression head scores (paper §3.2, equations 2-4).

For every head (l, h) and every k: each timestep q of episode i is a query; its
k nearest timesteps from ALL OTHER episodes in that head's activation space
(cosine similarity by default, Euclidean optional) predict its action as the
mean of their actions (eq. 3); the head's score is the mean over all queries of
the squared error summed over action dimensions, ||â_q - a_q||² (eq. 4).
Lower is better.

Implementation: features are L2-normalised once (cosine); heads are processed
in chunks and queries in chunks, so at most ``head_chunk x query_chunk x N``
similarities exist at a time (memory stays bounded at N = 10^5 rows). XLA
computes each chunk's similarities (one batched matmul); the exact ordered
top-k_max (k_max = max(ks)) then comes from one of two backends
(``KnnConfig.topk``):

* ``host`` (the default on CPU; XLA's CPU TopK is a single-threaded
  ``partial_sort`` per row and costs more than the matmul, see
  benchmarks/bench_head_scoring.py): XLA also returns the maxima over blocks of
  ``block`` columns; on the host, one head per thread-pool task, the k_max-th
  largest maximum of the blocks without a same-episode row bounds each row's
  k_max-th admissible similarity from below, and the few other-episode entries
  above it are ordered by one stable integer sort. A row the bound leaves short
  takes the full-row path (argpartition + stable tie check), so it stays exact.
* ``device`` (the default on GPU/TPU): episode mask and ``jax.lax.top_k`` inside
  the jitted graph.

Neighbour order on both: similarity desc, row index asc (a stable sort's
order). Prefix sums over the ordered neighbours' actions give every k at once.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

NEG = -1e30
TOPK_BACKENDS = ("auto", "host", "device")


@dataclass(frozen=True)
class KnnConfig:
    """The k-NN regression that scores heads (paper eqs 2-4), and how it is computed."""

    ks: tuple[int, ...] = field(default=(10, 20, 30, 40), metadata={
        "description": "neighbour counts scored; selection keeps the k whose top-m subset regresses best (paper)"})
    metric: Literal["cosine", "euclidean"] = field(default="cosine", metadata={
        "description": "similarity between activations (paper: cosine); selection uses the same"})
    query_chunk: int = field(default=512, metadata={
        "description": "queries per similarity chunk (memory: head_chunk x query_chunk x N); 8 x 512 measured "
        "fastest of (4..16) x (256..2000) at N = 2000 on CPU"})
    head_chunk: int = field(default=8, metadata={"description": "heads per similarity chunk"})
    topk: Literal["auto", "host", "device"] = field(default="auto", metadata={
        "description": "exact top-k: host (numpy threads, fastest on CPU), device (lax.top_k, GPU/TPU), auto "
        "picks by JAX backend"})
    threads: int = field(default=0, metadata={"description": "host top-k threads; 0 = os.cpu_count()"})
    block: int = field(default=8, metadata={
        "description": "host top-k: block maxima over this many columns bound each row's k_max-th value"})
    max_chunk_mb: float = field(default=256.0, metadata={
        "description": "cap on one similarity block (head_chunk x query_chunk x N x 4 B), in MB"})

    def __post_init__(self):
        if self.metric not in ("cosine", "euclidean"):
            raise ValueError(f"KnnConfig.metric: expected 'cosine' or 'euclidean', found {self.metric!r}")
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"KnnConfig.ks: expected positive neighbour counts, found {self.ks!r}")
        if self.topk not in TOPK_BACKENDS:
            raise ValueError(f"KnnConfig.topk: expected one of {TOPK_BACKENDS}, found {self.topk!r}")

    def backend(self) -> str:
        if self.topk != "auto":
            return self.topk
        return "host" if jax.default_backend() == "cpu" else "device"


@functools.partial(jax.jit, static_argnames=("metric", "heads"))
def _prep(features, metric: str, heads: int):
    """[N, h, d] (any float dtype) -> float32 [heads, N, d] (zero-padded heads), L2-normalised for
    cosine, and the squared norms [heads, N]."""
    f = jnp.moveaxis(jnp.asarray(features).astype(jnp.float32), 1, 0)
    if metric == "cosine":
        f = f / jnp.maximum(jnp.linalg.norm(f, axis=-1, keepdims=True), 1e-12)
    f = jnp.pad(f, ((0, heads - f.shape[0]), (0, 0), (0, 0)))
    return f, jnp.sum(f * f, axis=-1)


def _raw_similarities(fh, fq, db_sqnorm, metric):
    """fh [h, N, d] database, fq [h, q, d] queries -> [h, q, N]; larger is nearer (no episode mask)."""
    sims = jnp.einsum("hqd,hnd->hqn", fq, fh)
    if metric == "euclidean":  # -||q - x||^2 up to the per-query constant
        sims = 2 * sims - db_sqnorm[:, None, :]
    return sims


def _similarities(fh, fq, db_sqnorm, ep, ep_q, metric):
    """:func:`_raw_similarities` with same-episode entries masked out (NEG)."""
    return jnp.where((ep_q[:, None] == ep[None, :])[None], NEG, _raw_similarities(fh, fq, db_sqnorm, metric))


@functools.partial(jax.jit, static_argnames=("metric", "block"))
def _raw_similarities_and_block_max(fh, fq, db_sqnorm, metric, block):
    """Host backend's device half: the unmasked similarities [h, q, N] and their maxima over blocks
    of ``block`` columns [h, q, ceil(N / block)]. The episode mask is left to the host, which
    applies it to the few candidates only (masking here costs a pass over the chunk)."""
    sims = _raw_similarities(fh, fq, db_sqnorm, metric)
    h, q, n = sims.shape
    padded = jnp.pad(sims, ((0, 0), (0, 0), (0, (-n) % block)), constant_values=NEG)
    return sims, padded.reshape(h, q, -1, block).max(-1)


def _errors_from_neighbours(neigh_actions, a_q, ks):
    """neigh_actions [h, q, kmax, A] (jax) ordered nearest first -> squared errors [h, q, len(ks)] (eq. 3-4)."""
    csum = jnp.cumsum(neigh_actions, axis=-2)
    return jnp.stack([((csum[..., k - 1, :] / k - a_q) ** 2).sum(-1) for k in ks], -1)


def _host_errors_from_neighbours(neigh_actions: np.ndarray, a_q: np.ndarray, ks) -> np.ndarray:
    """Same as :func:`_errors_from_neighbours` for one head [q, kmax, A] in numpy: sums over the
    segments between consecutive k, then a cumulative sum over the few segments (numpy's cumsum
    over k_max is ~3x slower than this)."""
    order = np.argsort(ks)
    sk = np.asarray(ks)[order]
    seg = np.add.reduceat(neigh_actions, np.concatenate([[0], sk[:-1]]), axis=1)  # [q, len(ks), A]
    pred = np.cumsum(seg, axis=1) / sk[None, :, None]
    err = ((pred - a_q[:, None, :]) ** 2).sum(-1)
    return err[:, np.argsort(order)]


@functools.partial(jax.jit, static_argnames=("ks", "metric"))
def _score_chunk_device(fh, fq, db_sqnorm, actions, a_q, ep, ep_q, ks, metric):
    """Device backend: similarities, lax.top_k and the errors in one graph -> [h, q, len(ks)]."""
    sims = _similarities(fh, fq, db_sqnorm, ep, ep_q, metric)
    _, idx = jax.lax.top_k(sims, max(ks))
    return _errors_from_neighbours(jnp.take(actions, idx, axis=0), a_q[None], ks)


def _sortable(v: np.ndarray) -> np.ndarray:
    """float32 -> int64 with the same order (-0.0 and 0.0 equal, as they compare)."""
    bits = (v + np.float32(0)).view(np.int32)
    return np.where(bits < 0, bits ^ np.int32(0x7FFFFFFF), bits).astype(np.int64)


def _stable_topk_rows(sims: np.ndarray, kmax: int) -> np.ndarray:
    """Full-row path of :func:`ordered_topk`."""
    n = sims.shape[-1]
    part = np.argpartition(sims, n - kmax, axis=-1)[:, n - kmax:]
    vals = np.take_along_axis(sims, part, axis=-1)
    idx = np.take_along_axis(part, np.lexsort((part, -vals), axis=-1), axis=-1)
    # a tie across the boundary (another entry equal to the k_max-th value): a stable sort decides
    tied = np.flatnonzero((sims >= np.take_along_axis(sims, idx[:, -1:], axis=-1)).sum(-1) > kmax)
    if tied.size:
        idx[tied] = np.argsort(-sims[tied], axis=-1, kind="stable")[:, :kmax]
    return idx


def ordered_topk(sims: np.ndarray, kmax: int, lower: np.ndarray | None = None,
                 exclude: np.ndarray | None = None) -> np.ndarray:
    """Exact indices of the ``kmax`` largest entries of each row of ``sims`` [q, N], ordered by
    (value desc, index asc): the first ``kmax`` of a stable descending sort.

    ``exclude`` [q, N] bool (optional) marks entries that are never neighbours (same episode)
    as an array or as a callable ``(rows, cols) -> bool`` evaluated on candidates only.
    ``lower`` [q] (optional) is a guess at a lower bound of each row's kmax-th largest
    admissible value (e.g. from block maxima). Then only entries >= ``lower`` are candidates:
    they are sorted by (row, value desc, index asc) in one stable integer sort. A row with
    fewer than ``kmax`` admissible candidates (the guess was too high) takes the full-row
    path, so the result is exact whatever ``lower`` is.
    """
    q, n = sims.shape
    admissible = None if exclude is None else (lambda r, c: ~exclude(r, c)) if callable(exclude) else \
        (lambda r, c: ~exclude[r, c])
    if lower is None:
        return _stable_topk_rows(_masked(sims, np.arange(q), admissible), kmax)
    flat = np.flatnonzero(sims >= np.asarray(lower, sims.dtype)[:, None])  # row-major: rows ascending
    rows, cols = np.divmod(flat, n)
    if admissible is not None:
        keep = admissible(rows, cols)
        flat, rows, cols = flat[keep], rows[keep], cols[keep]
    order = np.argsort((rows << 32) - _sortable(np.take(sims, flat)), kind="stable")  # cols ascending on ties
    counts = np.bincount(rows, minlength=q)
    sel = np.minimum((np.cumsum(counts) - counts)[:, None] + np.arange(kmax)[None], max(flat.size - 1, 0))
    idx = np.take(cols, np.take(order, sel)) if flat.size else np.zeros((q, kmax), np.int64)
    redo = np.flatnonzero(counts < kmax)
    if redo.size:
        idx[redo] = _stable_topk_rows(_masked(sims[redo], redo, admissible), kmax)
    return idx


def _masked(sims, rows, admissible):
    if admissible is None:
        return sims
    cols = np.arange(sims.shape[1])
    return np.where(admissible(rows[:, None], cols[None, :]), sims, np.float32(-np.inf))


def episode_blocks(ep: np.ndarray, block: int) -> np.ndarray:
    """[episodes, ceil(N / block)] bool: column block b holds a row of episode e (ids 0..E-1)."""
    out = np.zeros((int(ep.max()) + 1, -(-len(ep) // block)), bool)
    out[ep, np.arange(len(ep)) // block] = True
    return out


def _host_errors(sims, block_max, ep, ep_q, ep_blocks, actions, a_q, ks, pool) -> np.ndarray:
    """Host backend for one chunk: unmasked sims [h, q, N] -> squared errors [h, q, len(ks)].

    Bound: leaving out the blocks that hold a row of the query's own episode, kmax distinct
    blocks each hold an admissible (other-episode) entry at least as large as the kmax-th
    largest remaining block maximum; every admissible entry at least that large, in any
    block, is a candidate."""
    kmax = max(ks)
    nb = block_max.shape[-1]
    dirty = np.take(ep_blocks, ep_q, axis=0)  # [q, blocks]: blocks holding the query's own episode

    def exclude(rows, cols):
        return np.take(ep, cols) == np.take(ep_q, rows)

    def one(h):
        lower = None
        if kmax <= nb:
            lower = np.partition(np.where(dirty, np.float32(NEG), block_max[h]), nb - kmax, axis=-1)[:, nb - kmax]
        idx = ordered_topk(sims[h], kmax, lower, exclude)
        return _host_errors_from_neighbours(np.take(actions, idx, axis=0), a_q, ks)

    return np.stack(list(pool.map(one, range(sims.shape[0]))))


def knn_errors(features, actions, episode_ids, cfg: KnnConfig = KnnConfig()) -> np.ndarray:
    """Mean squared error per head and k.

    ``features`` [N, Hd, d] (Hd heads) or [N, d] (one feature set); ``actions``
    [N, A]; ``episode_ids`` [N]. Returns [Hd, len(ks)] float64.
    """
    f = np.asarray(features)
    if f.ndim == 2:
        f = f[:, None, :]
    N, Hd, d = f.shape
    actions_np = np.asarray(actions, np.float32)
    eps_np = np.asarray(episode_ids)
    if actions_np.shape[0] != N or eps_np.shape[0] != N:
        raise ValueError(f"knn: features ({N} rows), actions ({actions_np.shape[0]}) and episode ids "
                         f"({eps_np.shape[0]}) must have the same number of rows")
    uniq, inv = np.unique(eps_np, return_inverse=True)
    if len(uniq) < 2:
        raise ValueError("knn: neighbours come from other episodes, so at least 2 episodes are needed")
    others = N - np.bincount(inv).max()
    if max(cfg.ks) > others:
        raise ValueError(f"knn: k={max(cfg.ks)} exceeds the {others} rows available from other episodes")
    ks = tuple(int(k) for k in cfg.ks)
    hc = max(1, min(cfg.head_chunk, Hd))
    qc = max(1, min(cfg.query_chunk, N, int(cfg.max_chunk_mb * 2**20 / (4 * hc * max(N, 1)))))
    host = cfg.backend() == "host"
    ep_np = inv.astype(np.int64)
    ep_blocks = episode_blocks(ep_np, cfg.block) if host else None
    total = np.zeros((Hd, len(ks)), np.float64)

    def chunks():  # fixed shapes (padded heads, wrapped queries) -> one compile per run
        for h0 in range(0, Hd, hc):
            fh, sq = _prep(f[:, h0:h0 + hc], cfg.metric, hc)  # [hc, N, d], [hc, N]
            for q0 in range(0, N, qc):
                yield h0, min(hc, Hd - h0), q0, min(q0 + qc, N), fh, sq, np.arange(q0, q0 + qc) % N

    if not host:
        actions_j, ep = jnp.asarray(actions_np), jnp.asarray(inv.astype(np.int32))
        for h0, nh, q0, q1, fh, sq, sl in chunks():
            err = _score_chunk_device(fh, fh[:, sl], sq, actions_j, actions_j[sl], ep, ep[sl], ks, cfg.metric)
            total[h0:h0 + nh] += np.asarray(err)[:nh, : q1 - q0].sum(axis=1, dtype=np.float64)
        return total / N

    def consume(h0, nh, q0, q1, sims, bmax):
        sims, bmax = np.asarray(sims)[:nh, : q1 - q0], np.asarray(bmax)[:nh, : q1 - q0]
        err = _host_errors(sims, bmax, ep_np, ep_np[q0:q1], ep_blocks, actions_np, actions_np[q0:q1], ks, pool)
        total[h0:h0 + nh] += err.sum(axis=1, dtype=np.float64)

    pending = None
    with ThreadPoolExecutor(cfg.threads or os.cpu_count() or 1) as pool:
        for h0, nh, q0, q1, fh, sq, sl in chunks():
            # dispatch is asynchronous: XLA computes this chunk while the host ranks the previous one
            out = _raw_similarities_and_block_max(fh, fh[:, sl], sq, cfg.metric, cfg.block)
            if pending:
                consume(*pending)
            pending = (h0, nh, q0, q1, *out)
        consume(*pending)
    return total / N


def head_scores(activations, actions, episode_ids, cfg: KnnConfig = KnnConfig()):
    """Scores of every head: a polars DataFrame (layer, head, k, mse) sorted by k then mse.

    ``activations`` [N, L, H, d] (any float dtype; float16 storage is upcast).
    """
    import polars as pl

    a = np.asarray(activations)
    if a.ndim != 4:
        raise ValueError(f"head_scores: expected activations [N, L, H, head_dim], found shape {a.shape}")
    N, L, H, d = a.shape
    mse = knn_errors(a.reshape(N, L * H, d), actions, episode_ids, cfg)  # [L*H, len(ks)]
    rows = [(l, h, k, float(mse[l * H + h, j])) for j, k in enumerate(cfg.ks) for l in range(L) for h in range(H)]
    return pl.DataFrame(rows, schema={"layer": pl.Int32, "head": pl.Int32, "k": pl.Int32, "mse": pl.Float64},
                        orient="row").sort(["k", "mse"])


def numpy_reference(features, actions, episode_ids, ks, metric="cosine") -> np.ndarray:
    """Straightforward O(N^2) reference for one feature set [N, d] (tests)."""
    f = np.asarray(features, np.float64)
    a = np.asarray(actions, np.float64)
    ep = np.asarray(episode_ids)
    if metric == "cosine":
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        s = f @ f.T
    else:
        s = -((f[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    s[ep[:, None] == ep[None, :]] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")
    out = []
    for k in ks:
        pred = a[order[:, :k]].mean(axis=1)
        out.append(((pred - a) ** 2).sum(-1).mean())
    return np.array(out)


def coefficient_of_variation(mse: np.ndarray) -> float:
    mse = np.asarray(mse, np.float64)
    return float(mse.std() / mse.mean()) if mse.mean() > 0 else math.nan


# ----------------------------------------------------------------------------- the head_scores step

SCORES_CONFIG_KEY = "robosteer.knn_config"


def score_task(cfg: KnnConfig, *, activations: str, out: str, task: str = "") -> tuple:
    """Score every head of the activation store ``activations`` and write ``out`` (parquet: layer,
    head, k, mse, task); returns (scores DataFrame, summary dict). The KnnConfig travels inside the parquet file's metadata, so selection and
    the overlap analysis use exactly the k-NN regression (metric included) the scores came from."""
    import json
    import time

    import polars as pl

    from robosteer_assets.common.atomic import atomic_file
    from robosteer_assets.common.spec import to_jsonable
    from robosteer_assets.steering.activations import ActivationStore

    acts, actions, eps = ActivationStore.open(activations).load()
    t0 = time.monotonic()
    df = head_scores(acts, actions, eps, cfg)
    secs = time.monotonic() - t0
    df = df.with_columns(pl.lit(task).alias("task"))
    with atomic_file(out) as f:
        df.write_parquet(f, metadata={SCORES_CONFIG_KEY: json.dumps(to_jsonable(cfg))})
    return df, {"heads": int(acts.shape[1] * acts.shape[2]), "examples": int(acts.shape[0]),
                "scoring_s": round(secs, 2), "finite": bool(np.isfinite(df["mse"].to_numpy()).all())}


def read_scores_config(path) -> KnnConfig:
    """The KnnConfig a ``score_task`` parquet file was computed with."""
    import json

    import polars as pl

    from robosteer_assets.common.spec import from_jsonable

    meta = pl.read_parquet_metadata(path)
    if SCORES_CONFIG_KEY not in meta:
        raise ValueError(f"{path}: expected the k-NN config under {SCORES_CONFIG_KEY!r} in the parquet metadata, "
                         "found none; re-materialize head_scores")
    return from_jsonable(KnnConfig, json.loads(meta[SCORES_CONFIG_KEY]), f"{path}: {SCORES_CONFIG_KEY}")


def read_scores(path) -> tuple:
    """(scores DataFrame, the KnnConfig they were computed with) from a ``score_task`` parquet file."""
    import polars as pl

    return pl.read_parquet(path), read_scores_config(path)
