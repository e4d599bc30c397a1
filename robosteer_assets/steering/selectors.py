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
  0.2 min for k-NN); progress is logged. Its loss rises come from the GPU step
  ``run_cma_step``.

``select_task_heads`` is the selection stage: it reads the task's activations
and head scores and dispatches on ``SelectionConfig.selector`` and
``SelectionConfig.multitask``.
"""

from __future__ import annotations

import time

import numpy as np

from robosteer_assets.common.progress import Progress, get_logger
from robosteer_assets.steering.selection import SelectionConfig, SelectionResult

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


def run_cma_step(cfg: SelectionConfig, logger, *, store: str, activations: str, checkpoint: str, out: str) -> dict:
    """dagster-pipes step ``cma_scores``: the loss rise of every head under ``checkpoint``, saved to ``out``
    (.npy). The loss batches are the activation rows (keyframes, at most ``cfg.cma.max_examples``) with
    their action chunks; noise/time draws are fixed per batch and derive from ``cfg.seed``."""
    import io

    import jax
    import jax.numpy as jnp

    from robosteer_assets.common.atomic import write_bytes_atomic
    from robosteer_assets.droid.chunks import chunk_indices, episode_ends
    from robosteer_assets.droid.store import EpisodeStore
    from robosteer_assets.steering.activations import ActivationStore
    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.checkpoint import load_checkpoint
    from robosteer_assets.vla.transforms import make_training_batch

    ckpt = load_checkpoint(checkpoint)
    mcfg = ckpt.cfg
    episodes = EpisodeStore.open(store)
    act = ActivationStore.open(activations)
    rows = np.asarray(act.group["row"][:])[: cfg.cma.max_examples]
    actions = np.asarray(episodes.arrays["actions"][:])
    ends = episode_ends(episodes.episodes, episodes.num_steps, str(episodes.path))
    B = cfg.cma.batch_size
    batches = []
    for s in range(0, len(rows) - len(rows) % B or len(rows), B):
        sel = rows[s:s + B]
        if len(sel) < B:
            sel = np.concatenate([sel, np.repeat(sel[-1:], B - len(sel))])
        chunks = actions[chunk_indices(sel, mcfg.action_horizon, ends[sel])]
        images, state, prompts = episodes.observations(sel)
        obs, acts = make_training_batch(mcfg, ckpt.tokenizer, ckpt.norm_stats, images, state, prompts, chunks)
        batches.append((obs, jnp.asarray(acts), jax.random.key(cfg.seed + len(batches))))
    loss = jax.jit(lambda p, o, a, r, hn: M.compute_loss(mcfg, p, o, a, r, head_noise=hn).mean())
    rise, secs = cma_scores(lambda b, hn: loss(ckpt.params, b[0], b[1], b[2], jnp.asarray(hn)), mcfg.num_layers,
                            mcfg.num_heads, batches, noise_std=cfg.cma.noise_std)
    buf = io.BytesIO()
    np.save(buf, rise)
    write_bytes_atomic(out, buf.getvalue())
    logger.info("CMA: %d heads x %d batches in %.1fs", rise.size, len(batches), secs)
    return {"cma_seconds": round(secs, 2), "heads": int(rise.size), "batches": len(batches), "path": out}


def select_task_heads(cfg: SelectionConfig, *, task: str, activations: str, scores: str, out: str,
                      other_activations: dict[str, str] | None = None, cma_rise: str = "") -> tuple:
    """The selection stage for ``task``: returns (SelectionResult, the scores it chose from) and writes
    the result JSON to ``out``.

    ``activations`` / ``scores``: the task's activation store and head scores; ``cfg.knn`` must be the
    k-NN config the scores were computed with (``knn.read_scores_config``), so the subset search uses
    the same metric and ks;
    ``other_activations``: {task: activation store} of ``cfg.tasks`` (multi-task selection,
    classification negatives); ``cma_rise``: the ``run_cma_step`` output (selector ``cma``)."""
    from robosteer_assets.common.atomic import write_text_atomic
    from robosteer_assets.steering.activations import ActivationStore
    from robosteer_assets.steering.knn import read_scores
    from robosteer_assets.steering.selection import select_heads, select_joint, select_non_overlapping

    table, knn = read_scores(scores)
    if cfg.knn != knn:
        raise ValueError(f"SelectionConfig.knn: expected the k-NN config {scores} was computed with ({knn}), "
                         f"found {cfg.knn}")
    table = table.drop("task") if "task" in table.columns else table
    store = ActivationStore.open(activations)
    position = store.attrs.get("config", {}).get("position", "first_suffix")
    acts, actions, eps = store.load()
    others = {t: ActivationStore.open(p).load() for t, p in (other_activations or {}).items() if t != task}
    if cfg.selector == "knn" and cfg.multitask == "joint":
        result, table = select_joint({task: (acts, actions, eps), **others}, cfg, position=position)
    elif cfg.selector == "knn" and cfg.multitask == "non_overlapping":
        result = select_non_overlapping({task: (acts, actions, eps), **others}, cfg, position=position)
    elif cfg.selector == "knn":
        result, _ = select_heads(acts, actions, eps, cfg, scores=table, position=position)
    elif cfg.selector == "random":
        result = select_random(acts.shape[1], acts.shape[2], cfg.m, cfg.seed)
    elif cfg.selector == "classification":
        if not others:
            raise ValueError("SelectionConfig.tasks: the classification selector needs negative examples; expected "
                             "other tasks with head activations, found none")
        result, _ = select_classification(acts, np.concatenate([a for a, _, _ in others.values()]), cfg.m)
    else:
        if not cma_rise:
            raise ValueError("select_task_heads: selector 'cma' expected the loss rises of run_cma_step (cma_rise), "
                             "found none")
        result = select_cma(np.load(cma_rise), cfg.m)
    result.tasks = result.tasks or [task]
    result.position = position
    write_text_atomic(out, result.to_json())
    return result, table
