"""k-NN regression head scores (paper §3.2, equations 2-4).

For every head (l, h) and every k: each timestep q of episode i is a query; its
k nearest timesteps from ALL OTHER episodes in that head's activation space
(cosine similarity by default, Euclidean optional) predict its action as the
mean of their actions (eq. 3); the head's score is the mean over all queries of
the squared error summed over action dimensions, ||â_q - a_q||² (eq. 4).
Lower is better.

Implementation: features are L2-normalised once (cosine); heads are processed
in chunks and queries in chunks, so at most ``head_chunk x query_chunk x N``
similarities exist at a time (memory stays bounded at N = 10^5 rows). The exact
top-k_max (k_max = max(ks)) uses a blocked search: the row is cut into blocks
of ``block`` entries, the k_max blocks with the largest maxima necessarily hold
the true top-k_max, and an exact top-k over those candidates finishes it (XLA's
CPU TopK over 10^4 entries is slow; this keeps it exact and fast). Prefix sums
over the sorted neighbours give every k at once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

NEG = -1e30


@dataclass(frozen=True)
class KnnConfig:
    ks: tuple[int, ...] = (10, 20, 30, 40)
    metric: str = "cosine"  # or "euclidean"
    query_chunk: int = 1024
    head_chunk: int = 16
    block: int = 64  # measured best of 16/32/64 at N = 2000 on this CPU
    max_chunk_mb: float = 256.0  # cap on one similarity block (head_chunk x query_chunk x N x 4 B)

    def __post_init__(self):
        if self.metric not in ("cosine", "euclidean"):
            raise ValueError(f"KnnConfig.metric: expected 'cosine' or 'euclidean', found {self.metric!r}")
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"KnnConfig.ks: expected positive neighbour counts, found {self.ks!r}")


def _prep(features, metric: str):
    f = jnp.asarray(features, jnp.float32)
    if metric == "cosine":
        f = f / jnp.maximum(jnp.linalg.norm(f, axis=-1, keepdims=True), 1e-12)
    return f


def _topk_blocked(scores, k: int, block: int):
    """Exact top-k along the last axis via block maxima. scores [..., N] (N % block == 0)."""
    *lead, n = scores.shape
    nb = n // block
    if nb <= k:
        return jax.lax.top_k(scores, k)
    blocks = scores.reshape(*lead, nb, block)
    _, bidx = jax.lax.top_k(blocks.max(-1), k)  # the k blocks with the largest maxima
    cand = jnp.take_along_axis(blocks, bidx[..., None], axis=-2).reshape(*lead, k * block)
    vals, ci = jax.lax.top_k(cand, k)
    idx = jnp.take_along_axis(bidx, ci // block, axis=-1) * block + ci % block
    return vals, idx


@functools.partial(jax.jit, static_argnames=("ks", "metric", "block"))
def _score_chunk(fh, fq, db_sqnorm, q_sqnorm, actions, a_q, ep, ep_q, ks, metric, block):
    """fh [h, N, d] database, fq [h, q, d] queries -> squared errors [h, q, len(ks)]."""
    sims = jnp.einsum("hqd,hnd->hqn", fq, fh)
    if metric == "euclidean":  # larger is nearer: -||q - x||^2 up to the per-query constant
        sims = 2 * sims - db_sqnorm[:, None, :]
    sims = jnp.where(ep_q[None, :, None] == ep[None, None, :], NEG, sims)  # other episodes only
    n = sims.shape[-1]
    pad = (-n) % block
    if pad:
        sims = jnp.pad(sims, ((0, 0), (0, 0), (0, pad)), constant_values=NEG)
    kmax = max(ks)
    _, idx = _topk_blocked(sims, kmax, block)  # [h, q, kmax]
    neigh = jnp.take(actions, jnp.minimum(idx, n - 1), axis=0)  # [h, q, kmax, A]
    csum = jnp.cumsum(neigh, axis=2)
    errs = []
    for k in ks:
        pred = csum[:, :, k - 1] / k
        errs.append(jnp.sum((pred - a_q[None]) ** 2, axis=-1))
    return jnp.stack(errs, axis=-1)


def knn_errors(features, actions, episode_ids, cfg: KnnConfig = KnnConfig()) -> np.ndarray:
    """Mean squared error per head and k.

    ``features`` [N, Hd, d] (Hd heads) or [N, d] (one feature set); ``actions``
    [N, A]; ``episode_ids`` [N]. Returns [Hd, len(ks)] float64.
    """
    f = np.asarray(features)
    if f.ndim == 2:
        f = f[:, None, :]
    N, Hd, d = f.shape
    actions = jnp.asarray(actions, jnp.float32)
    ep = jnp.asarray(np.asarray(episode_ids).astype(np.int64))
    if actions.shape[0] != N or ep.shape[0] != N:
        raise ValueError(f"knn: features ({N} rows), actions ({actions.shape[0]}) and episode ids ({ep.shape[0]}) "
                         "must have the same number of rows")
    n_eps = len(np.unique(np.asarray(episode_ids)))
    if n_eps < 2:
        raise ValueError("knn: neighbours come from other episodes, so at least 2 episodes are needed")
    others = N - np.bincount(np.unique(np.asarray(episode_ids), return_inverse=True)[1]).max()
    if max(cfg.ks) > others:
        raise ValueError(f"knn: k={max(cfg.ks)} exceeds the {others} rows available from other episodes")
    hc = max(1, min(cfg.head_chunk, Hd))
    qc = max(1, min(cfg.query_chunk, N, int(cfg.max_chunk_mb * 2**20 / (4 * hc * max(N, 1)))))
    total = np.zeros((Hd, len(cfg.ks)), np.float64)
    for h0 in range(0, Hd, hc):
        fh = _prep(np.moveaxis(f[:, h0:h0 + hc], 1, 0), cfg.metric)  # [h, N, d]
        if fh.shape[0] < hc:  # pad the last head chunk (fixed shapes -> one compile)
            fh = jnp.concatenate([fh, jnp.zeros((hc - fh.shape[0], N, d), fh.dtype)])
        sq = jnp.sum(fh * fh, axis=-1)
        for q0 in range(0, N, qc):
            q1 = min(q0 + qc, N)
            sl = np.arange(q0, q0 + qc) % N  # pad the last query chunk by wrapping; trimmed below
            err = _score_chunk(fh, fh[:, sl], sq, sq[:, sl], actions, actions[sl], ep, ep[sl],
                               tuple(cfg.ks), cfg.metric, cfg.block)
            total[h0:h0 + hc] += np.asarray(err[:, : q1 - q0].sum(axis=1), np.float64)[: min(hc, Hd - h0)]
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
