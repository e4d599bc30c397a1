"""Per-head activations of the frozen base VLA over a task's demonstrations (paper §3.2).

Each selected timestep (the keyframes by default, as the paper does following
Yin et al.; or all timesteps) is one example: the base model runs on the
timestep's observation (exterior + wrist image, state, instruction) and
``vla.model.capture_heads`` returns every LLM head's attention output at the
chosen token position (first suffix token by default). Written as a zarr store:

    activations  [N, L, H, head_dim]   float16 by default
    actions      [N, 8]                the timestep's normalised robot action (the paper's a_t)
    episode_index, step, row [N]       where each example comes from
    attrs: position, timesteps, model config name, checkpoint, dtype, complete=True (written last)

The store is built in a temporary sibling and renamed into place, so an
interrupted or cancelled run leaves no half-written store; ``ActivationStore.open``
refuses anything without the ``complete`` marker or with inconsistent shapes.
Batches have a fixed size (the last one is padded), so the capture function
compiles once.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from robosteer_assets.common.atomic import TMP_PREFIX, atomic_dir
from robosteer_assets.common.cancel import raise_if_cancelled
from robosteer_assets.common.progress import Progress, get_logger

log = get_logger("steering.activations")
STORE_NAME = "activations.zarr"
FORMAT_VERSION = 1


class ActivationStoreError(RuntimeError):
    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = str(path), problem

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


@dataclass(frozen=True)
class ActivationsConfig:
    """Which timesteps and which token position the head activations are taken at (paper §3.2)."""

    timesteps: Literal["keyframes", "all"] = field(
        default="keyframes", metadata={"description": "keyframes (paper, following Yin et al.) or every timestep"})
    position: Literal["first_suffix", "last_prefix"] = field(
        default="first_suffix", metadata={"description": "token position of the captured head outputs"})
    batch_size: int = field(default=16, metadata={"description": "timesteps per model forward (fixed; the last "
                                                                 "batch is padded)"})
    storage_dtype: Literal["float16", "float32"] = field(
        default="float16", metadata={"description": "dtype of the stored activations"})
    noise_seed: int = field(default=0, metadata={"description": "seed of the action noise x_t at t = 1, on which "
                                                               "pi0.5's first suffix token depends"})

    def __post_init__(self):
        if self.timesteps not in ("keyframes", "all"):
            raise ValueError(f"ActivationsConfig.timesteps: expected 'keyframes' or 'all', found {self.timesteps!r}")
        if self.position not in ("first_suffix", "last_prefix"):
            raise ValueError(f"ActivationsConfig.position: expected 'first_suffix' or 'last_prefix', "
                             f"found {self.position!r}")
        if self.storage_dtype not in ("float16", "float32"):
            raise ValueError(f"ActivationsConfig.storage_dtype: expected float16/float32, found {self.storage_dtype!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"ActivationsConfig.batch_size: expected a positive integer, found {self.batch_size!r}")


def write_tables(g, *, actions, episode_index, step, row, attrs: dict) -> None:
    """Complete an activation store whose ``activations`` array ``g`` (an open zarr group) already
    holds: the per-example tables (normalised actions, episode index, step, store row), then the
    attributes with ``complete=True`` last."""
    for name, data, dtype in (("actions", actions, np.float32), ("episode_index", episode_index, np.int32),
                              ("step", step, np.int32), ("row", row, np.int64)):
        g.create_array(name, data=np.asarray(data).astype(dtype), config={"write_empty_chunks": True})
    g.attrs.update({**attrs, "format_version": FORMAT_VERSION})
    g.attrs["complete"] = True


def write_random_store(path: str | os.PathLike, *, episodes: int, steps: int, layers: int, heads: int, dim: int,
                       seed: int = 0) -> str:
    """A complete store in this layout with random float16 activations and actions (every step of
    ``episodes`` episodes of ``steps`` steps): small data for tests, as ``droid.synthetic`` is for
    episodes."""
    import zarr

    rng = np.random.default_rng(seed)
    n = episodes * steps
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    g.create_array("activations", data=rng.normal(size=(n, layers, heads, dim)).astype(np.float16))
    write_tables(g, actions=rng.normal(size=(n, 8)), episode_index=np.repeat(np.arange(episodes), steps),
                 step=np.tile(np.arange(steps), episodes), row=np.arange(n),
                 attrs={"num_examples": n, "num_layers": layers, "num_heads": heads, "head_dim": dim,
                        "config": {"position": "first_suffix"}})
    return str(path)


def extract_activations(store, rows: np.ndarray, ckpt, out_path: str | os.PathLike,
                        cfg: ActivationsConfig = ActivationsConfig(), checkpoint_id: str = "") -> dict:
    """Run ``ckpt`` (a ``vla.checkpoint.LoadedCheckpoint``) over ``rows`` of an
    ``EpisodeStore`` and write ``out_path`` (``.../activations.zarr``). Returns a summary."""
    import jax
    import zarr

    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.transforms import make_observation, normalize_actions

    t0 = time.monotonic()
    mcfg = ckpt.cfg
    rows = np.asarray(sorted(set(int(r) for r in rows)), np.int64)
    if rows.size == 0:
        raise ValueError(f"{store.path}: no timesteps selected for activation extraction")
    ep_idx = np.asarray(store.arrays["episode_index"][:])
    steps = np.asarray(store.arrays["step"][:])
    N, L, H, d, B = len(rows), mcfg.num_layers, mcfg.num_heads, mcfg.head_dim, cfg.batch_size
    dtype = np.float16 if cfg.storage_dtype == "float16" else np.float32
    capture = jax.jit(lambda p, o, n: M.capture_heads(mcfg, p, o, position=cfg.position, noise=n))
    noise = jax.random.normal(jax.random.key(cfg.noise_seed), (B, mcfg.action_horizon, mcfg.action_dim))
    out_path = Path(out_path)
    prog = Progress(log, f"head activations ({cfg.position}, {N} timesteps)", N)
    total = total_sq = 0.0  # sums over the stored values, for their std
    with atomic_dir(out_path) as tmp:
        g = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        acts = g.create_array("activations", shape=(N, L, H, d), dtype=dtype, chunks=(min(N, 256), L, H, d),
                              config={"write_empty_chunks": True})
        for start in range(0, N, B):
            raise_if_cancelled("head activation extraction")
            sel = rows[start:start + B]
            n = len(sel)
            pad = np.concatenate([sel, np.repeat(sel[-1:], B - n)])
            images, state, prompts = store.observations(pad)
            obs = make_observation(mcfg, ckpt.tokenizer, ckpt.norm_stats, images, state, prompts)
            cap = np.asarray(capture(ckpt.params, obs, noise))[:n]
            if not np.isfinite(cap).all():
                raise FloatingPointError(f"{store.path}: non-finite activations at rows {sel.tolist()[:5]}...")
            stored = cap.astype(dtype)
            if not np.isfinite(stored).all():
                raise FloatingPointError(f"{store.path}: activations at rows {sel.tolist()[:5]}... overflow "
                                         f"{cfg.storage_dtype}; expected finite values (storage_dtype float32 keeps them)")
            acts[start:start + n] = stored
            total += stored.astype(np.float64).sum()
            total_sq += np.square(stored.astype(np.float64)).sum()
            prog.update(n)
        raw_actions = np.asarray(store.arrays["actions"].get_orthogonal_selection(rows))
        norm_actions = normalize_actions(mcfg, ckpt.norm_stats, raw_actions[:, None, :])[:, 0, :raw_actions.shape[1]]
        summary = {"num_examples": N, "num_layers": L, "num_heads": H, "head_dim": d, "model": mcfg.name,
                   "checkpoint": checkpoint_id, "task": store.task, "episodes": int(len(np.unique(ep_idx[rows]))),
                   "config": asdict(cfg), "wall_s": round(time.monotonic() - t0, 2),
                   "std": float(np.sqrt(max(0.0, total_sq / (N * L * H * d) - (total / (N * L * H * d)) ** 2)))}
        write_tables(g, actions=norm_actions, episode_index=ep_idx[rows], step=steps[rows], row=rows, attrs=summary)
    log.info("wrote %s: %d examples x %d layers x %d heads x %d in %.1fs", out_path, N, L, H, d, summary["wall_s"])
    return {**summary, "path": str(out_path)}


class ActivationStore:
    """Read-only view; ``ActivationStore.open(path)`` refuses half-written stores."""

    def __init__(self, path: Path, group, attrs: dict):
        self.path, self.group, self.attrs = path, group, attrs

    @classmethod
    def open(cls, path: str | os.PathLike) -> "ActivationStore":
        import zarr

        path = Path(path)
        if path.is_dir() and path.name != STORE_NAME and (path / STORE_NAME).exists():
            path = path / STORE_NAME
        if not path.exists():
            tmps = sorted(path.parent.glob(f"{TMP_PREFIX}{path.name}-*")) if path.parent.exists() else []
            hint = f" (only the interrupted temporary {tmps[0].name} exists)" if tmps else ""
            raise ActivationStoreError(path, f"no activation store{hint}; materialize head_activations")
        try:
            g = zarr.open_group(str(path), mode="r", zarr_format=3)
            attrs = dict(g.attrs)
        except Exception as e:
            raise ActivationStoreError(path, f"unreadable zarr group ({type(e).__name__}: {e})") from None
        if attrs.get("complete") is not True:
            raise ActivationStoreError(path, "half-written (no 'complete' marker); re-materialize head_activations")
        N = attrs.get("num_examples")
        shapes = {"activations": (N, attrs.get("num_layers"), attrs.get("num_heads"), attrs.get("head_dim")),
                  "episode_index": (N,), "step": (N,), "row": (N,)}
        for name, shape in shapes.items():
            try:
                a = g[name]
            except Exception as e:
                raise ActivationStoreError(path, f"array {name!r} missing ({type(e).__name__})") from None
            if tuple(a.shape) != shape or a.nchunks_initialized != a.nchunks:
                raise ActivationStoreError(path, f"array {name!r}: expected shape {shape} with every chunk present, "
                                                 f"found {tuple(a.shape)} ({a.nchunks_initialized}/{a.nchunks} chunks)")
        return cls(path, g, attrs)

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(activations f32 [N,L,H,d], actions [N,A], episode_index [N])."""
        acts = np.asarray(self.group["activations"][:], np.float32)
        if not np.isfinite(acts).all():
            raise ActivationStoreError(self.path, "non-finite activations")
        return acts, np.asarray(self.group["actions"][:]), np.asarray(self.group["episode_index"][:])


def run_step(cfg: ActivationsConfig, logger, *, store: str, keyframes: str, checkpoint: str, out: str,
             checkpoint_id: str = "") -> dict:
    """dagster-pipes step ``head_activations`` (``remote.run_step``): the activations of the task's
    ``store`` at its ``keyframes`` (or every timestep) under ``checkpoint``, written to ``out``."""
    from robosteer_assets.droid.keyframe_table import read_keyframes
    from robosteer_assets.droid.store import EpisodeStore
    from robosteer_assets.vla.checkpoint import load_checkpoint

    episodes = EpisodeStore.open(store)
    if cfg.timesteps == "keyframes":
        rows = read_keyframes(keyframes)["row"].to_numpy()
    else:
        rows = np.arange(episodes.num_steps)
    ckpt = load_checkpoint(checkpoint)
    logger.info("extracting %s activations of %d timesteps with %s", cfg.position, len(rows), ckpt.cfg.name)
    return extract_activations(episodes, rows, ckpt, out, cfg, checkpoint_id=checkpoint_id)
