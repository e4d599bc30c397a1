"""Other head selectors for the paper's ablations (Table 3, A.2), with the same
output as k-NN selection (a SelectionResult).

* random: m distinct heads drawn with a seeded generator.
* classification (A.2, "Head Selection via Classification"): positive examples
  (the target task) vs negative examples (other tasks). For each head, class
  centroids of the L2-normalised activations; each example's margin is its
  cosine to its own class centroid minus its cosine to the other class centroid
  (sign flipped for negatives, i.e. always "towards the right class"); the head
  score is the mean margin; the m highest-scoring heads are selected.
* CMA, causal noise ablation (Table 3): Gaussian noise on one head's output at a
  time (before the output projection); the score is the rise of the base model's
  flow-matching loss on the demonstrations (same noise/time draws for every
  head); the m heads with the largest rise are selected. It needs one model
  forward per head and batch, so it is slow by nature (the paper: 58 min vs
  0.2 min for k-NN); progress is logged.
"""

from __future__ import annotations

import time

import numpy as np

from robosteer_assets.common.progress import Progress, get_logger
from robosteer_assets.steering.selection import SelectionResult

log = get_logger("steering.selectors")


def select_random(num_layers: int, num_heads: int, m: int = 20, seed: int = 0) -> SelectionResult:
    if not 1 <= m <= num_layers * num_heads:
        raise ValueError(f"random selector: m must be in 1..{num_layers * num_heads}, found {m}")
    flat = np.random.default_rng(seed).choice(num_layers * num_heads, size=m, replace=False)
    heads = [(int(i // num_heads), int(i % num_heads)) for i in flat]
    return SelectionResult(heads=heads, k=0, m=m, subset_mse={}, metric="none", selector=f"random(seed={seed})",
                           num_layers=num_layers, num_heads=num_heads)


def classification_scores(pos_acts, neg_acts) -> np.ndarray:
    """Mean centroid margin per head: [L, H]. ``pos_acts``/``neg_acts`` [N, L, H, d]."""
    def unit(x):
        x = np.asarray(x, np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    p, n = unit(pos_acts), unit(neg_acts)
    cp, cn = unit(p.mean(0)), unit(n.mean(0))  # [L, H, d]
    margin_p = np.einsum("nlhd,lhd->nlh", p, cp) - np.einsum("nlhd,lhd->nlh", p, cn)
    margin_n = np.einsum("nlhd,lhd->nlh", n, cn) - np.einsum("nlhd,lhd->nlh", n, cp)
    return np.concatenate([margin_p, margin_n]).mean(0)


def select_classification(pos_acts, neg_acts, m: int = 20) -> tuple[SelectionResult, np.ndarray]:
    s = classification_scores(pos_acts, neg_acts)
    L, H = s.shape
    order = sorted(((float(-s[l, h]), l, h) for l in range(L) for h in range(H)))
    heads = [(l, h) for _, l, h in order[:m]]
    return SelectionResult(heads=heads, k=0, m=m, subset_mse={}, metric="centroid_margin",
                           selector="classification", num_layers=L, num_heads=H), s


def cma_scores(loss_fn, num_layers: int, num_heads: int, batches, noise_std: float = 1.0) -> tuple[np.ndarray, float]:
    """Loss rise per head: [L, H], and the wall time.

    ``loss_fn(batch, head_noise [L, H]) -> scalar`` must use fixed noise / time /
    ablation draws per batch, so the only difference between calls is which head
    is perturbed (e.g. ``vla.model.compute_loss`` with a fixed rng)."""
    t0 = time.monotonic()
    zeros = np.zeros((num_layers, num_heads), np.float32)
    base = [float(loss_fn(b, zeros)) for b in batches]
    rise = np.zeros((num_layers, num_heads))
    prog = Progress(log, "CMA noise ablation (heads)", num_layers * num_heads)
    for l in range(num_layers):
        for h in range(num_heads):
            hn = zeros.copy()
            hn[l, h] = noise_std
            rise[l, h] = np.mean([float(loss_fn(b, hn)) - b0 for b, b0 in zip(batches, base)])
            prog.update(1)
    return rise, time.monotonic() - t0


def select_cma(rise: np.ndarray, m: int = 20) -> SelectionResult:
    L, H = rise.shape
    order = sorted(((float(-rise[l, h]), l, h) for l in range(L) for h in range(H)))
    return SelectionResult(heads=[(l, h) for _, l, h in order[:m]], k=0, m=m, subset_mse={}, metric="loss_rise",
                           selector="cma", num_layers=L, num_heads=H)


def run_cma_step(spec: dict, logger) -> dict:
    """dagster-pipes entry: CMA scores for a task. spec = {store, activations, checkpoint, out,
    noise_std, batch_size, max_examples, seed}. The loss batches are the activation rows
    (keyframes) with their action chunks; noise/time draws are fixed per batch."""
    import jax
    import jax.numpy as jnp

    from robosteer_assets.droid.chunks import chunk_indices, episode_ends
    from robosteer_assets.droid.store import EpisodeStore
    from robosteer_assets.steering.activations import ActivationStore
    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.checkpoint import load_checkpoint
    from robosteer_assets.vla.transforms import make_training_batch

    ckpt = load_checkpoint(spec["checkpoint"])
    cfg = ckpt.cfg
    store = EpisodeStore.open(spec["store"])
    act = ActivationStore.open(spec["activations"])
    rows = np.asarray(act.group["row"][:])[: int(spec.get("max_examples", 64))]
    ep_idx = np.asarray(store.arrays["episode_index"][:])
    actions = np.asarray(store.arrays["actions"][:])
    ends = episode_ends(store.episodes, store.num_steps, str(store.path))
    B = int(spec.get("batch_size", 8))
    batches = []
    for s in range(0, len(rows) - len(rows) % B or len(rows), B):
        sel = rows[s:s + B]
        if len(sel) < B:
            sel = np.concatenate([sel, np.repeat(sel[-1:], B - len(sel))])
        chunks = actions[chunk_indices(sel, cfg.action_horizon, ends[sel])]
        images = np.stack([store.arrays["images"][int(r)] for r in sel])
        state = np.asarray(store.arrays["state"].get_orthogonal_selection(sel))
        prompts = [store.episodes[int(ep_idx[r])]["instruction"] for r in sel]
        obs, acts = make_training_batch(cfg, ckpt.tokenizer, ckpt.norm_stats, images, state, prompts, chunks)
        batches.append((obs, jnp.asarray(acts), jax.random.key(int(spec.get("seed", 0)) + len(batches))))
    loss = jax.jit(lambda p, o, a, r, hn: M.compute_loss(cfg, p, o, a, r, head_noise=hn).mean())
    rise, secs = cma_scores(lambda b, hn: loss(ckpt.params, b[0], b[1], b[2], jnp.asarray(hn)), cfg.num_layers,
                            cfg.num_heads, batches, noise_std=float(spec.get("noise_std", 1.0)))
    import io

    from robosteer_assets.common.atomic import write_bytes_atomic

    buf = io.BytesIO()
    np.save(buf, rise)
    write_bytes_atomic(spec["out"], buf.getvalue())
    logger.info("CMA: %d heads x %d batches in %.1fs", rise.size, len(batches), secs)
    return {"cma_seconds": round(secs, 2), "heads": int(rise.size), "batches": len(batches), "path": spec["out"]}
