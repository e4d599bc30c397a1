"""Selective finetuning (Robotic Steering, paper §3.3 / B.1) and the full-head LoRA baseline.

Initialisation is openpi's weight loader (openpi_facts §2.3): the base checkpoint's weights
are merged into a freshly initialised LoRA-augmented tree (missing regex ``.*lora.*``), then
split by the method's rules (``training.trainable``) into a *trainable* and a *frozen*
subtree. Only the trainable subtree is differentiated (``jax.value_and_grad`` w.r.t. it) and
given to the optimizer, so frozen leaves have no optimizer state and no gradient — a frozen
vision encoder gets no backward pass at all. Frozen leaves are cast to the config dtype
(bf16 for the real models, as openpi); trainable ones stay float32.

Loss: the base model's flow-matching loss (``vla.model.compute_loss``, mean over batch and
horizon). Pretraining in simulation may add an auxiliary object-position objective
(``object_aux_weight``): a linear probe from the SigLIP tokens of the exterior and wrist
images to the start xy and yaw of each kind of object in the scene, one output slot per kind
(``training.data.episode_object_targets``), so the same readout finds a cube in every task.
Flow matching alone rewards reading the object's position from the pixels only on the few
frames where the joint state does not already imply the motion, so a small policy learns to
lean on the state; the probe makes the image tokens carry the position. The probe is
training-only: it is not part of the exported checkpoint, which keeps openpi's tree.
Optimizer: ``training.optimizer`` (mask -> clip -> AdamW -> mask). Per step rng:
``fold_in(key(seed), step)``; data: ``training.data.ChunkDataset.batch_at(step)`` — both pure
functions of the step, so a resumed run equals an uninterrupted one.

Sharding (openpi_facts §5.3): a ``("batch", "fsdp")`` mesh over the devices; data sharded on
its leading axis over both axes (the batch must divide by the device count); a parameter is
sharded on its largest axis divisible by ``fsdp_devices`` when it is >= 2-D and >= 4 MiB,
otherwise replicated. The step is jitted with explicit in/out shardings (so chained calls
never re-shard) and donates the trainable params and optimizer state.

Resume: an orbax ``CheckpointManager`` in ``<out>/../.<name>.train_state`` saves the
trainable params, the optimizer state, the step, the data seed and position and the loss
history every ``save_interval`` steps (and at the end); a new run with the same config
(fingerprint) restores the latest step and continues; a different config starts fresh. After
a successful export the training state is removed unless ``keep_train_state``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from robosteer_assets.common.cancel import raise_if_cancelled
from robosteer_assets.common.progress import get_logger
from robosteer_assets.training import trainable as T
from robosteer_assets.training.data import NORM_STATS_SOURCES, OBJECT_TARGET_DIM, XY_COLUMNS
from robosteer_assets.training.export import merge_lora  # noqa: F401  (documented name)
from robosteer_assets.training.optimizer import OptimizerConfig, ScheduleConfig

log = get_logger("training")

AUGMENTS = ("none", "color", "openpi")  # TrainConfig.augment: none, colour jitter only, openpi's full set


FSDP_MIN_BYTES = 4 * 2**20  # openpi: parameters under 4 MiB are replicated
STATE_FORMAT = 1
OBJECT_PROBE = "object_probe"  # the training-only probe's subtree in the trainable parameters


@dataclass(frozen=True)
class TrainConfig:
    """Paper B.3 / openpi defaults: 5000 steps, batch 32, LoRA rank 8, warmup-cosine schedule
    (200 / 2.5e-5 / 5000 / 2.5e-6), AdamW (0.9, 0.95, 1e-8, wd 1e-10, clip 1.0)."""

    method: str = "steering"
    steps: int = 5000
    batch_size: int = 32
    lora_rank: int = 8
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    seed: int = 42
    log_interval: int = 100
    save_interval: int = 1000
    keep_train_state: bool = False
    train_state_dir: str | None = None  # default: <out>/../.<out name>.train_state
    fsdp_devices: int = 1
    fsdp_min_bytes: int = FSDP_MIN_BYTES
    remat: bool = False
    norm_stats: str = "checkpoint"  # or "demos"
    full_lora_init_b: str = "normal"  # openpi's LoRA init for the baseline
    augment: str = "none"  # "openpi" (crop / rotate / colour jitter), "color" (jitter only) or "none"
    object_aux_weight: float = 0.0  # weight of the object-position probe loss (method "pretrain" on sim demos)
    start_frames: int = 0  # the first steps of each episode ...
    start_repeats: int = 1  # ... appear this many times per epoch (training.data start oversampling)

    def __post_init__(self):
        for name, cls in (("schedule", ScheduleConfig), ("optimizer", OptimizerConfig)):
            if isinstance(getattr(self, name), dict):  # written as plain mappings (tests, notebooks)
                object.__setattr__(self, name, cls(**getattr(self, name)))
        T.check_method(self.method)
        for name in ("steps", "batch_size", "lora_rank", "log_interval", "save_interval", "fsdp_devices"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}: expected >= 1, found {getattr(self, name)}")
        if self.norm_stats not in NORM_STATS_SOURCES:
            raise ValueError(f"TrainConfig.norm_stats: expected one of {NORM_STATS_SOURCES}, found {self.norm_stats!r}")
        if self.start_frames < 0 or self.start_repeats < 1:
            raise ValueError(f"TrainConfig.start_frames / start_repeats: expected >= 0 / >= 1, found "
                             f"{self.start_frames} / {self.start_repeats}")
        if self.object_aux_weight < 0:
            raise ValueError(f"TrainConfig.object_aux_weight: expected >= 0, found {self.object_aux_weight}")
        if self.object_aux_weight > 0 and self.method != "pretrain":
            raise ValueError(f"TrainConfig.object_aux_weight: the object-position objective trains the vision "
                             f"tower, so it needs method 'pretrain'; found method {self.method!r}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"TrainConfig.augment: expected one of {AUGMENTS}, found {self.augment!r}")

    def augment_config(self):
        """The ``vla.augment.AugmentConfig`` of ``augment`` (None: no augmentation)."""
        from robosteer_assets.vla.augment import AugmentConfig

        if self.augment == "none":
            return None
        return AugmentConfig() if self.augment == "openpi" else AugmentConfig(crop_scale=1.0, max_rotation_deg=0.0)

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self, base_checkpoint: str, heads) -> str:
        """What a resumable state must agree on (log/save intervals and the step count may change)."""
        d = {k: v for k, v in self.to_dict().items()
             if k not in ("log_interval", "save_interval", "keep_train_state", "train_state_dir", "steps")}
        blob = json.dumps({"cfg": d, "base": str(Path(base_checkpoint).resolve()),
                           "heads": sorted([list(map(int, h)) for h in heads or []])}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- sharding

def fsdp_spec(shape, itemsize: int, fsdp: int, min_bytes: int = FSDP_MIN_BYTES):
    """openpi's FSDP rule: replicate if fsdp == 1, < 2-D or < ``min_bytes``; else shard the largest
    axis divisible by ``fsdp`` (axes in descending size order); replicate if none fits."""
    from jax.sharding import PartitionSpec as P

    shape = tuple(shape)
    if fsdp == 1 or len(shape) < 2 or int(np.prod(shape)) * itemsize < min_bytes:
        return P()
    for ax in sorted(range(len(shape)), key=lambda a: -shape[a]):
        if shape[ax] % fsdp == 0:
            spec = [None] * len(shape)
            spec[ax] = "fsdp"
            return P(*spec)
    return P()


def make_mesh(fsdp_devices: int, devices=None):
    import jax
    from jax.sharding import Mesh

    devices = list(devices if devices is not None else jax.devices())
    n = len(devices)
    if n % fsdp_devices:
        raise ValueError(f"fsdp_devices={fsdp_devices} must divide the device count {n}")
    return Mesh(np.array(devices).reshape(n // fsdp_devices, fsdp_devices), ("batch", "fsdp"))


def tree_shardings(mesh, tree, fsdp: int, min_bytes: int):
    import jax
    from jax.sharding import NamedSharding

    return jax.tree_util.tree_map(
        lambda x: NamedSharding(mesh, fsdp_spec(x.shape, np.dtype(x.dtype).itemsize, fsdp, min_bytes)), tree)


# ----------------------------------------------------------------------------- the trainer

def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Trainer:
    """Holds the split parameter trees, optimizer, mesh and the jitted step for one run."""

    def __init__(self, cfg: TrainConfig, base, heads=None, devices=None):
        import jax
        import jax.numpy as jnp
        from jax.sharding import NamedSharding, PartitionSpec as P

        from robosteer_assets.training.optimizer import full_mask_tree, mask_aware_optimizer, make_schedule
        from robosteer_assets.vla import model as M
        from robosteer_assets.vla.checkpoint import merge_params

        self.cfg, self.base = cfg, base
        heads = [tuple(int(x) for x in h) for h in heads or []]
        if cfg.method in ("steering", "steering_full") and not heads:
            raise ValueError(f"{cfg.method} finetuning needs the selected heads (materialize selected_heads); "
                             f"found none")
        self.heads = heads
        self.lcfg = T.lora_config(base.cfg, cfg.method, cfg.lora_rank, cfg.full_lora_init_b)
        flat = M.flatten(merge_params(base.params, M.init_params(self.lcfg, cfg.seed), missing_regex=".*lora.*"))
        self.train_paths = sorted(p for p in flat if T.is_trainable(p, cfg.method))
        if not self.train_paths:
            raise ValueError(f"{cfg.method}: no trainable parameters in {base.cfg.name}")
        frozen_dtype = jnp.bfloat16 if base.cfg.dtype == "bfloat16" else jnp.float32
        self.n_trainable = T.trainable_count(flat, cfg.method, self.lcfg, heads or None)
        self.n_total = int(sum(np.prod(v.shape) for v in flat.values()))
        self.mesh = make_mesh(cfg.fsdp_devices, devices)
        n_dev = self.mesh.devices.size
        if cfg.batch_size % n_dev:
            raise ValueError(f"TrainConfig.batch_size={cfg.batch_size} must be divisible by the device count {n_dev}")
        train_np = M.unflatten({p: np.asarray(flat[p], np.float32) for p in self.train_paths})
        self.object_aux = cfg.object_aux_weight > 0
        if self.object_aux:
            n_feat = 2 * base.cfg.vision.num_patches * base.cfg.llm.width
            train_np[OBJECT_PROBE] = {"kernel": np.zeros((n_feat, OBJECT_TARGET_DIM), np.float32),
                                      "bias": np.zeros(OBJECT_TARGET_DIM, np.float32)}
        frozen_np = M.unflatten({p: np.asarray(v).astype(frozen_dtype) for p, v in flat.items()
                                 if p not in set(self.train_paths)})
        fs, mb = cfg.fsdp_devices, cfg.fsdp_min_bytes
        self.train_sh = tree_shardings(self.mesh, train_np, fs, mb)
        self.frozen_sh = tree_shardings(self.mesh, frozen_np, fs, mb)
        self.repl = NamedSharding(self.mesh, P())
        self.data_sh = NamedSharding(self.mesh, P(("batch", "fsdp")))
        masks = T.head_masks(self.lcfg, heads, cfg.method) if cfg.method != "full_lora" else {}
        self.mask_tree = full_mask_tree(train_np, masks) if masks else None
        self.tx = mask_aware_optimizer(cfg.optimizer, cfg.schedule, self.mask_tree)
        self.lr = make_schedule(cfg.schedule)
        opt_shape = jax.eval_shape(self.tx.init, train_np)
        self.opt_sh = tree_shardings(self.mesh, opt_shape, fs, mb)
        self.frozen = jax.device_put(frozen_np, self.frozen_sh)
        self.train_init = train_np
        lcfg, tx, mask_tree, remat = self.lcfg, self.tx, self.mask_tree, cfg.remat
        augment = cfg.augment_config()
        key = jax.random.key(cfg.seed)

        aux_weight = cfg.object_aux_weight

        def loss_fn(tr, frozen, obs, actions, objects, rng):
            params = _deep_merge(frozen, {k: v for k, v in tr.items() if k != OBJECT_PROBE})
            flow = M.compute_loss(lcfg, params, obs, actions, rng, train=True, remat=remat, augment=augment).mean()
            if not aux_weight:
                return flow, (flow, jnp.zeros(()))
            aux = object_probe_loss(lcfg, params, tr[OBJECT_PROBE], obs, *objects)
            return flow + aux_weight * aux, (flow, aux)

        def step(tr, opt, frozen, obs, actions, objects, i):
            (_, (loss, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                tr, frozen, obs, actions, objects, jax.random.fold_in(key, i))
            if mask_tree is not None:
                from robosteer_assets.training.optimizer import apply_masks

                gnorm = optax_global_norm(apply_masks(grads, mask_tree))
            else:
                gnorm = optax_global_norm(grads)
            updates, opt = tx.update(grads, opt, tr)
            tr = jax.tree_util.tree_map(lambda a, u: (a + u).astype(a.dtype), tr, updates)
            return tr, opt, {"loss": loss, "grad_norm": gnorm, "object_loss": aux}

        self._step = jax.jit(step, in_shardings=(self.train_sh, self.opt_sh, self.frozen_sh, self.data_sh,
                                                 self.data_sh, self.data_sh, self.repl),
                             out_shardings=(self.train_sh, self.opt_sh, self.repl), donate_argnums=(0, 1))
        self._init_opt = jax.jit(tx.init, in_shardings=(self.train_sh,), out_shardings=self.opt_sh)

    def initial_state(self):
        import jax

        tr = jax.device_put(self.train_init, self.train_sh)
        return tr, self._init_opt(tr)

    def abstract_state(self):
        import jax

        def sds(x, s):
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)

        tr = jax.tree_util.tree_map(sds, jax.eval_shape(lambda: self.train_init), self.train_sh)
        opt = jax.tree_util.tree_map(sds, jax.eval_shape(self.tx.init, self.train_init), self.opt_sh)
        return {"params": tr, "opt_state": opt}

    def put_batch(self, obs, actions):
        import jax

        return jax.device_put(obs, self.data_sh), jax.device_put(np.asarray(actions, np.float32), self.data_sh)

    def put_objects(self, targets, mask):
        """Normalised object targets and their mask for the step (``object_aux_weight`` > 0)."""
        import jax

        return jax.device_put((np.asarray(targets, np.float32), np.asarray(mask, np.float32)), self.data_sh)

    def _no_objects(self, actions):
        import jax.numpy as jnp

        z = jnp.zeros((actions.shape[0], OBJECT_TARGET_DIM), jnp.float32)
        return z, z

    def step(self, tr, opt, obs, actions, i: int, objects=None):
        """One optimizer step. ``objects``: ``put_objects(...)`` when the object-position objective is on."""
        import jax.numpy as jnp

        if self.object_aux and objects is None:
            raise ValueError("TrainConfig.object_aux_weight > 0: the step needs the batch's object targets")
        objects = objects if objects is not None else self._no_objects(actions)
        return self._step(tr, opt, self.frozen, obs, actions, objects, jnp.int32(i))

    def lower_step(self, obs, actions):
        """The lowered step for ``cost/memory_analysis`` (benchmarks)."""
        import jax.numpy as jnp

        a = self.abstract_state()
        return self._step.lower(a["params"], a["opt_state"], self.frozen, obs, actions, self._no_objects(actions),
                                jnp.int32(0))

    def final_flat(self, tr) -> dict:
        import jax

        from robosteer_assets.vla import model as M

        out = {p: np.asarray(v, np.float32) for p, v in M.flatten(jax.device_get(self.frozen)).items()}
        out.update({p: np.asarray(v) for p, v in M.flatten(jax.device_get(
            {k: v for k, v in tr.items() if k != OBJECT_PROBE})).items()})
        return out


def object_probe_loss(cfg, params, probe, obs, targets, mask):
    """Masked mean squared error of the linear probe from the exterior and wrist images' SigLIP
    tokens (``[B, 2 * n_patches * D0]``) to the normalised object targets ``[B, OBJECT_TARGET_DIM]``."""
    import jax.numpy as jnp

    from robosteer_assets.vla.config import IMAGE_KEYS
    from robosteer_assets.vla.siglip import embed_image

    B = targets.shape[0]
    feats = jnp.concatenate([embed_image(cfg, params["PaliGemma"]["img"], obs.images[k]).reshape(B, -1)
                             for k in IMAGE_KEYS[:2]], axis=-1).astype(jnp.float32)
    pred = feats @ probe["kernel"] + probe["bias"]
    return jnp.sum(mask * (pred - targets) ** 2) / jnp.maximum(jnp.sum(mask), 1.0)


def optax_global_norm(tree):
    import optax

    return optax.global_norm(tree)


# ----------------------------------------------------------------------------- resume state

class TrainState:
    """orbax CheckpointManager of {params, opt_state} + JSON meta {step, data seed/position, losses, ...}."""

    def __init__(self, directory: Path, fingerprint: str, save_interval: int):
        import orbax.checkpoint as ocp

        self.dir, self.fingerprint = Path(directory), fingerprint
        meta = self._meta_file()
        if self.dir.exists() and (not meta.exists() or json.loads(meta.read_text()).get("fingerprint") != fingerprint):
            log.warning("%s: training state of a different run (config / base / heads changed); starting fresh",
                        self.dir)
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not meta.exists():
            meta.write_text(json.dumps({"fingerprint": fingerprint, "format": STATE_FORMAT}))
        self.mngr = ocp.CheckpointManager(self.dir.resolve(), options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, enable_async_checkpointing=True))

    def _meta_file(self) -> Path:
        return self.dir / "run.json"

    def latest(self) -> int | None:
        return self.mngr.latest_step()

    def save(self, step: int, tr, opt, meta: dict) -> None:
        import orbax.checkpoint as ocp

        self.mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave({"params": tr, "opt_state": opt}),
                                                     meta=ocp.args.JsonSave(meta)), force=True)

    def restore(self, step: int, abstract: dict):
        import orbax.checkpoint as ocp

        r = self.mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                            meta=ocp.args.JsonRestore()))
        return r["state"]["params"], r["state"]["opt_state"], r["meta"]

    def close(self) -> None:
        self.mngr.wait_until_finished()
        self.mngr.close()


# ----------------------------------------------------------------------------- the run

def train(cfg: TrainConfig, base, stores, heads=None, state_dir: str | os.PathLike | None = None,
          devices=None, base_checkpoint: str | os.PathLike | None = None) -> dict:
    """Run (or resume) the training loop. Returns {trainer, final_flat, losses, log_rows, norm_stats,
    resumed_from, step_times}."""
    from robosteer_assets.training.data import ChunkDataset, DataConfig, model_batch, resolve_norm_stats

    trainer = Trainer(cfg, base, heads, devices)
    norm_stats = resolve_norm_stats(DataConfig(cfg.norm_stats), base.norm_stats, stores)
    data = ChunkDataset(stores, trainer.lcfg.action_horizon, cfg.batch_size, cfg.seed, cfg.start_frames,
                        cfg.start_repeats)
    log.info("%s finetuning of %s: %d trainable leaves, %s of %s parameters can change, heads %s, %d devices "
             "(fsdp %d), %d examples", cfg.method, base.cfg.name, len(trainer.train_paths),
             f"{trainer.n_trainable:,}", f"{trainer.n_total:,}", trainer.heads or "all", trainer.mesh.devices.size,
             cfg.fsdp_devices, len(data))
    fp = cfg.fingerprint(str(base_checkpoint or base.path), trainer.heads)
    state = TrainState(Path(state_dir), fp, cfg.save_interval) if state_dir is not None else None
    start, losses, log_rows, resumed_from = 0, [], [], None
    tr, opt = None, None
    if state is not None and state.latest() is not None:
        resumed_from = int(state.latest())
        tr, opt, meta = state.restore(resumed_from, trainer.abstract_state())
        if meta.get("data_seed") != cfg.seed or int(meta["step"]) != resumed_from:
            raise ValueError(f"{state.dir}: inconsistent training state (meta {meta}, step {resumed_from})")
        start, losses, log_rows = resumed_from, list(meta["losses"]), list(meta["log_rows"])
        log.info("%s: resumed from step %d of %d", cfg.method, start, cfg.steps)
    if tr is None:
        tr, opt = trainer.initial_state()
    objects = ObjectTargetScale.of(data) if trainer.object_aux else None
    step_times, window = [], []
    try:
        for i in range(start, cfg.steps):
            raise_if_cancelled(f"{cfg.method} finetuning")
            obs, acts = trainer.put_batch(*model_batch(trainer.lcfg, base.tokenizer, norm_stats, data.batch_at(i)))
            obj = trainer.put_objects(*objects.batch(data, i)) if objects is not None else None
            ts = time.monotonic()
            tr, opt, info = trainer.step(tr, opt, obs, acts, i, obj)
            loss, gnorm, oloss = float(info["loss"]), float(info["grad_norm"]), float(info["object_loss"])
            dt = time.monotonic() - ts
            step_times.append(dt)
            losses.append(loss)
            window.append((loss, gnorm, dt, oloss))
            done = i + 1
            if done % cfg.log_interval == 0 or i == start or done == cfg.steps:
                w = np.array(window)
                row = {"step": done, "loss": float(w[:, 0].mean()), "grad_norm": float(w[:, 1].mean()),
                       "lr": float(trainer.lr(i)), "step_s": float(np.median(w[:, 2]))}
                if objects is not None:  # the probe's masked mean squared error, in normalised units
                    row["object_loss"] = float(w[:, 3].mean())
                log_rows.append(row)
                window = []
                log.info("%s step %d/%d: loss=%.4f grad_norm=%.4f lr=%.3g step=%.3fs%s", cfg.method, done, cfg.steps,
                         row["loss"], row["grad_norm"], row["lr"], row["step_s"],
                         f" object_loss={row['object_loss']:.4f}" if objects is not None else "")
            if state is not None and (done % cfg.save_interval == 0 or done == cfg.steps):
                # copies of the histories: the save is asynchronous and the loop keeps appending to them
                state.save(done, tr, opt, {"step": done, "data_seed": cfg.seed, "data_position": done * cfg.batch_size,
                                           "losses": list(losses), "log_rows": list(log_rows), "fingerprint": fp})
    finally:
        if state is not None:
            state.close()
    return {"trainer": trainer, "final_flat": trainer.final_flat(tr), "losses": losses, "log_rows": log_rows,
            "norm_stats": norm_stats, "resumed_from": resumed_from, "step_times": step_times}



@dataclass(frozen=True)
class ObjectTargetScale:
    """Centre and standard deviation (metres, per axis) of the object positions, from every episode
    of the run's data, so the probe regresses values of order one in x and in y alike (the yaw terms
    already are)."""

    center: tuple[float, float]
    scale: tuple[float, float]

    @classmethod
    def of(cls, data) -> "ObjectTargetScale":
        xy = np.concatenate([t[:, cols][m[:, cols[0]] > 0] for t, m in data.episode_targets() for cols in XY_COLUMNS])
        center, std = xy.mean(0), np.maximum(xy.std(0), 1e-3)
        return cls((float(center[0]), float(center[1])), (float(std[0]), float(std[1])))

    def batch(self, data, step: int) -> tuple[np.ndarray, np.ndarray]:
        t, m = data.object_targets_at(step)
        t = t.copy()
        for cols in XY_COLUMNS:
            t[:, cols] = (t[:, cols] - np.asarray(self.center, np.float32)) / np.asarray(self.scale, np.float32)
        return (t * m).astype(np.float32), m


def default_state_dir(out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir)
    return out.parent / f".{out.name}.train_state"


def finetune(base_checkpoint: str | os.PathLike, stores, out_dir: str | os.PathLike, cfg: TrainConfig,
             heads: list[tuple[int, int]] | None = None, selection_json: str | None = None, devices=None,
             extra: dict | None = None) -> dict:
    """Finetune the base checkpoint on ``stores`` (the task's EpisodeStores) with ``cfg.method``, resuming
    from the training state if one of the same run exists, and export the merged checkpoint to ``out_dir``.
    ``extra``: more JSON-able fields for the checkpoint's ``robosteer_config.json``."""
    from robosteer_assets.training.export import export_checkpoint
    from robosteer_assets.vla.checkpoint import load_checkpoint

    t0 = time.monotonic()
    base = load_checkpoint(base_checkpoint)
    state_dir = Path(cfg.train_state_dir) if cfg.train_state_dir else default_state_dir(out_dir)
    run = train(cfg, base, stores, heads, state_dir, devices, base_checkpoint)
    trainer, losses = run["trainer"], run["losses"]
    tail = losses[-max(1, min(cfg.log_interval, len(losses))):] if losses else [float("nan")]
    if selection_json is None and trainer.heads:
        selection_json = json.dumps({"heads": [list(h) for h in trainer.heads]})
    info = {"kind": f"robotic_steering:{cfg.method}", "method": cfg.method, "base_checkpoint": str(base_checkpoint),
             "train_config": cfg.to_dict(), "heads": [list(h) for h in trainer.heads],
             "trainable_parameters": int(trainer.n_trainable), "total_parameters": trainer.n_total,
             "final_loss": float(np.mean(tail)), "steps": cfg.steps, **(extra or {})}
    export_checkpoint(out_dir, base, trainer.lcfg, run["final_flat"], run["norm_stats"], train_config=cfg.to_dict(),
                      losses=losses, log_rows=run["log_rows"], extra=info, selection_json=selection_json)
    if not cfg.keep_train_state:
        shutil.rmtree(state_dir, ignore_errors=True)
    st = run["step_times"]
    return {**{k: v for k, v in info.items() if k != "train_config"},
            "resumed_from": run["resumed_from"], "log_rows": run["log_rows"],
            "step_s_median": float(np.median(st[1:] or st)) if st else None,
            "wall_s": round(time.monotonic() - t0, 1), "path": str(out_dir)}


def run_step(spec: TrainConfig, logger, *, base_checkpoint: str, store: str, out: str,
             selected_heads: str = "") -> dict:
    """dagster-pipes step ``finetune``: ``spec`` (rebuilt by ``remote.run_step``) with the base checkpoint,
    the task's store (``episodes.zarr``; several joined by ``,``), the output directory and, for the
    steering methods, ``selected_heads.json``."""
    from robosteer_assets.droid.store import EpisodeStore

    heads, sel_text = None, None
    if spec.method in ("steering", "steering_full"):
        if not selected_heads or not Path(selected_heads).is_file():
            raise FileNotFoundError(f"finetune: selected_heads: {selected_heads!r} not found (materialize "
                                    f"selected_heads first)")
        sel_text = Path(selected_heads).read_text()
        try:  # a steering.selection.SelectionResult JSON; only its "heads" [[layer, head], ...] are needed
            heads = [(int(h[0]), int(h[1])) for h in json.loads(sel_text)["heads"]]
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ValueError(f"{selected_heads}: expected a selected_heads JSON with 'heads': [[layer, head], ...] "
                             f"({type(e).__name__}: {e})") from None
    stores = [EpisodeStore.open(s) for s in store.split(",")]
    logger.info("finetuning (%s, %d steps, batch %d) from %s", spec.method, spec.steps, spec.batch_size,
                base_checkpoint)
    res = finetune(base_checkpoint, stores, out, spec, heads, sel_text)
    res.pop("log_rows", None)
    return res


__all__ = ["TrainConfig", "Trainer", "TrainState", "default_state_dir", "finetune", "fsdp_spec",
           "make_mesh", "merge_lora", "run_step", "train", "replace"]
