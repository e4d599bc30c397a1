"""The embedded default's base policy: a tiny pi0 trained from scratch on the broad
simulated corpus (``embedded.corpus``), standing in for pi0-DROID.

It knows the robot, both cameras, the table and the other tasks' objects and
motions, but not the target task, so zero-shot success on the target is low
and few-shot finetuning matters (paper Table 1). The result is an ordinary
checkpoint in openpi's layout (``vla.checkpoint.save_checkpoint``) with norm
stats computed from the corpus and a tiny SentencePiece tokenizer trained on
every simulated task's instruction (the target's included: a real PaliGemma
tokenizer knows every word too; only the behaviour is held out).

Training: all parameters, flow-matching loss, AdamW with openpi's defaults
(b1 0.9, b2 0.95, eps 1e-8, weight decay 1e-10, global-norm clip 1.0) and a
warmup-cosine schedule; batches are random timesteps with their action chunks
(indices past the episode end clamp to the last step, as openpi's loader).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from robosteer_assets.common.cancel import raise_if_cancelled
from robosteer_assets.common.progress import get_logger
from robosteer_assets.embedded.corpus import CorpusConfig, record_corpus
from robosteer_assets.training.data import ChunkSampler

log = get_logger("embedded.base_policy")


@dataclass(frozen=True)
class BasePolicyConfig:
    model: str = "pi0_tiny"
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    steps: int = 600
    batch_size: int = 8
    peak_lr: float = 1e-3
    warmup_steps: int = 50
    end_lr: float = 1e-4
    seed: int = 0
    image_size: int = 224
    log_every: int = 50


def train_base_policy(stores, out_dir: str | os.PathLike, cfg: BasePolicyConfig = BasePolicyConfig(),
                      instructions: list[str] | None = None) -> dict:
    """Train a fresh ``cfg.model`` on ``stores`` (EpisodeStores) and save it to ``out_dir``."""
    import jax
    import optax

    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.normalize import compute_norm_stats
    from robosteer_assets.vla.tokenizer import PromptTokenizer, train_tiny_tokenizer
    from robosteer_assets.vla.transforms import make_training_batch

    t0 = time.monotonic()
    mcfg = get_config(cfg.model)
    out_dir = Path(out_dir)
    work = out_dir.parent / f".{out_dir.name}-work"
    work.mkdir(parents=True, exist_ok=True)
    words = sorted(set(instructions or []) | {ep["instruction"] for s in stores for ep in s.episodes})
    tok_path = train_tiny_tokenizer(words, work / "tokenizer.model", mcfg.vocab_size)
    tokenizer = PromptTokenizer.for_model(mcfg, tok_path)
    stats = compute_norm_stats({"state": np.concatenate([np.asarray(s.arrays["state"][:]) for s in stores]),
                                "actions": np.concatenate([np.asarray(s.arrays["actions"][:]) for s in stores])})
    sampler = ChunkSampler(stores, mcfg.action_horizon, cfg.seed)
    params = jax.tree_util.tree_map(jax.numpy.asarray, M.init_params(mcfg, cfg.seed))
    warmup = min(cfg.warmup_steps, max(0, cfg.steps - 1))
    sched = optax.warmup_cosine_decay_schedule(cfg.peak_lr / (warmup + 1), cfg.peak_lr, warmup, cfg.steps, cfg.end_lr)
    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(sched, b1=0.9, b2=0.95, eps=1e-8, weight_decay=1e-10))
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, obs, actions, rng):
        loss, grads = jax.value_and_grad(lambda p: M.compute_loss(mcfg, p, obs, actions, rng).mean())(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    losses, key = [], jax.random.key(cfg.seed)
    t_loop = time.monotonic()
    for i in range(cfg.steps):
        raise_if_cancelled("base policy training")
        images, state, chunks, prompts = sampler.batch(cfg.batch_size)
        obs, acts = make_training_batch(mcfg, tokenizer, stats, images, state, prompts, chunks)
        params, opt, loss = step(params, opt, obs, acts, jax.random.fold_in(key, i))
        losses.append(float(loss))
        if (i + 1) % cfg.log_every == 0 or i == 0:
            el = time.monotonic() - t_loop
            log.info("base policy step %d/%d loss %.4f (%.2f s/step)", i + 1, cfg.steps,
                     float(np.mean(losses[-cfg.log_every:])), el / (i + 1))
    extra = {"kind": "embedded_base_policy", "train_config": json.loads(json.dumps(asdict(cfg), default=list)),
             "episodes": int(sum(s.num_episodes for s in stores)), "tasks": sorted({s.task for s in stores}),
             "final_loss": float(np.mean(losses[-max(1, cfg.log_every):]))}
    save_checkpoint(out_dir, mcfg, jax.device_get(params), stats, tokenizer_path=tok_path, extra=extra)
    (out_dir.parent / f"{out_dir.name}.losses.json").write_text(json.dumps(losses))
    return {**extra, "steps": cfg.steps, "wall_s": round(time.monotonic() - t0, 1), "losses": losses,
            "path": str(out_dir)}


def build_base_policy(corpus_root: str | os.PathLike, out_dir: str | os.PathLike,
                      cfg: BasePolicyConfig = BasePolicyConfig()) -> dict:
    """Record (or reuse) the corpus, ingest it, train, save."""
    from robosteer_assets.droid.reader import ReadConfig
    from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
    from robosteer_assets.sim.tasks import TASKS

    corpus_root = Path(corpus_root)
    dirs = record_corpus(corpus_root / "demos", cfg.corpus)
    stores = []
    for task in dirs:
        store_dir = corpus_root / "store" / task
        try:
            store = EpisodeStore.open(store_dir)
        except Exception:
            ingest_task(corpus_root / "demos" / task, store_dir,
                        IngestConfig(read=ReadConfig(image_size=cfg.image_size), min_episodes=1))
            store = EpisodeStore.open(store_dir)
        stores.append(store)
    log.info("base policy corpus: %d tasks, %d episodes, %d steps", len(stores),
             sum(s.num_episodes for s in stores), sum(s.num_steps for s in stores))
    return train_base_policy(stores, out_dir, cfg, instructions=[t.instruction for t in TASKS.values()])


def run_step(spec: dict, logger) -> dict:
    """dagster-pipes entry: spec = {corpus_root, out, held_out_tasks, episodes_per_task, steps, batch_size,
    peak_lr, model, seed}."""
    corpus = CorpusConfig(held_out_tasks=tuple(spec.get("held_out_tasks", ("pick_cube",))),
                          episodes_per_task=int(spec.get("episodes_per_task", 6)))
    cfg = BasePolicyConfig(model=spec.get("model", "pi0_tiny"), corpus=corpus, steps=int(spec.get("steps", 600)),
                           batch_size=int(spec.get("batch_size", 8)), peak_lr=float(spec.get("peak_lr", 1e-3)),
                           seed=int(spec.get("seed", 0)))
    logger.info("training the embedded base policy (%s, %d steps, held out: %s)", cfg.model, cfg.steps,
                list(corpus.held_out_tasks))
    out = build_base_policy(spec["corpus_root"], spec["out"], cfg)
    out.pop("losses", None)
    return out
