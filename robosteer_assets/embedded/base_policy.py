"""The embedded default's base policy: a tiny pi0 pretrained from scratch on the broad
simulated corpus (``embedded.corpus``), standing in for pi0-DROID.

It knows the robot, both cameras, the table, the lighting and the corpus tasks'
objects and motions, but not the target settings, so zero-shot success on a target
is low and few-shot finetuning matters (paper Table 1). The result is an ordinary
checkpoint in openpi's layout (``vla.checkpoint.save_checkpoint``) with norm stats
computed from the corpus and a tiny SentencePiece tokenizer trained on every
simulated instruction, the targets' included (a real PaliGemma tokenizer knows every
word too; only the behaviour is held out).

Training is the project's one training loop (``training.trainer``) with the
``pretrain`` method: every parameter trainable, flow-matching loss, openpi's AdamW and
a warmup-cosine schedule, seeded stateless batches, and an orbax training state every
``save_interval`` steps, so a killed pretraining resumes where it stopped. The
starting point is a freshly initialised checkpoint written next to the output.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from robosteer_assets.common.progress import get_logger
from robosteer_assets.embedded.corpus import CorpusConfig, record_corpus

log = get_logger("embedded.base_policy")

# Flow noise scale for evaluating the embedded policies in simulation (``SimEvalConfig.noise_scale``):
# 0 integrates the flow from its mean starting noise. pi0_tiny's single samples scatter too much to
# close the loop (measured: an oracle scores 30/40 at 0 and 2/40 at openpi's 1 on pick_cube).
EMBEDDED_EVAL_NOISE_SCALE = 0.0

# the base policy that ships with the project (built by `robosteer pretrain`, see its MODEL_CARD.md)
SHIPPED_BASE = Path(__file__).resolve().parents[2] / "models" / "pi0_tiny_sim_base"


@dataclass(frozen=True)
class BasePolicyConfig:
    """The embedded default's base policy. By default the shipped checkpoint (``SHIPPED_BASE``) is
    installed after a config-hash check; with ``rebuild`` it is pretrained from scratch with the fields
    below. ``augment``: image augmentation of the training loop (``training.trainer.AUGMENTS``)."""

    model: str = "pi0_tiny"
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    steps: int = 6500
    batch_size: int = 32
    peak_lr: float = 1e-3
    warmup_steps: int = 200
    end_lr: float = 1e-5
    seed: int = 0
    augment: str = "none"
    object_aux_weight: float = 1.0  # training.trainer's object-position probe (the corpus is simulated)
    # start oversampling (training.data): the first steps of each episode, this many times per epoch.
    # Only there must the object be found in the pixels: later, the arm's pose in the images gives its
    # position away (measured: the probe locates a corpus cube to 4.2 cm at step 12 but 13 cm at step 0)
    start_frames: int = 4
    start_repeats: int = 6
    save_interval: int = 250
    log_interval: int = 50
    rebuild: bool = False  # pretrain from scratch into the data root instead of installing the shipped base

    def __post_init__(self):
        for name in ("steps", "batch_size", "save_interval", "log_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"BasePolicyConfig.{name}: expected >= 1, found {getattr(self, name)}")

    def train_config(self):
        from robosteer_assets.training.optimizer import ScheduleConfig
        from robosteer_assets.training.trainer import TrainConfig

        return TrainConfig(method="pretrain", steps=self.steps, batch_size=self.batch_size, seed=self.seed,
                           schedule=ScheduleConfig(warmup_steps=min(self.warmup_steps, self.steps - 1),
                                                   peak_lr=self.peak_lr, decay_steps=self.steps,
                                                   decay_lr=self.end_lr),
                           log_interval=self.log_interval, save_interval=self.save_interval,
                           norm_stats="checkpoint", augment=self.augment,
                           object_aux_weight=self.object_aux_weight, start_frames=self.start_frames,
                           start_repeats=self.start_repeats)


def work_dir(out_dir: str | os.PathLike) -> Path:
    """Where the tokenizer, the initial checkpoint and the resumable training state live."""
    out = Path(out_dir)
    return out.parent / f".{out.name}-work"


def init_checkpoint(stores, out_dir: str | os.PathLike, cfg: BasePolicyConfig,
                    instructions: list[str] | None = None) -> Path:
    """Write (once) the freshly initialised ``cfg.model`` with the corpus norm stats and a tiny
    tokenizer: the starting checkpoint of pretraining. Deterministic in (stores, cfg)."""
    from robosteer_assets.training.data import demo_norm_stats
    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

    work = work_dir(out_dir)
    init = work / "init"
    mcfg = get_config(cfg.model)
    words = sorted(set(instructions or []) | {ep["instruction"] for s in stores for ep in s.episodes})
    stamp = json.dumps({"model": cfg.model, "seed": cfg.seed, "words": words,
                        "stores": sorted((str(Path(s.path).resolve()), s.num_steps) for s in stores)}, sort_keys=True)
    if (init / "init.json").is_file() and (init / "init.json").read_text() == stamp:
        return init
    work.mkdir(parents=True, exist_ok=True)
    tok_path = train_tiny_tokenizer(words, work / "tokenizer.model", mcfg.vocab_size)
    save_checkpoint(init, mcfg, M.init_params(mcfg, cfg.seed), demo_norm_stats(stores), tokenizer_path=tok_path,
                    extra={"kind": "initialisation"})
    (init / "init.json").write_text(stamp)
    return init


def train_base_policy(stores, out_dir: str | os.PathLike, cfg: BasePolicyConfig = BasePolicyConfig(),
                      instructions: list[str] | None = None, extra: dict | None = None) -> dict:
    """Pretrain a fresh ``cfg.model`` on ``stores`` (EpisodeStores) and export it to ``out_dir``
    (resuming a killed run of the same config)."""
    from robosteer_assets.training.trainer import finetune

    t0 = time.monotonic()
    init = init_checkpoint(stores, out_dir, cfg, instructions)
    tcfg = cfg.train_config()
    state_dir = work_dir(out_dir) / "train_state"
    info = {"kind": "embedded_base_policy", "base_config": json.loads(json.dumps(asdict(cfg), default=list)),
            "episodes": int(sum(s.num_episodes for s in stores)), "steps_of_data": int(sum(s.num_steps for s in stores)),
            "tasks": sorted({s.task for s in stores}), **(extra or {})}
    out = finetune(init, stores, out_dir, replace(tcfg, train_state_dir=str(state_dir)), extra=info)
    losses = json.loads((Path(out_dir) / "loss_curve.json").read_text())
    return {**out, **info, "wall_s": round(time.monotonic() - t0, 1), "losses": losses, "path": str(out_dir)}


def _open_current(store_dir: Path, episodes: int, resolution: int):
    """The store at ``store_dir`` if it holds ``episodes`` episodes at ``resolution`` px, else None."""
    from robosteer_assets.droid.errors import StoreError
    from robosteer_assets.droid.store import EpisodeStore

    try:
        store = EpisodeStore.open(store_dir)
    except StoreError:  # missing, half-written, corrupt or from another image resize
        return None
    return store if store.num_episodes == episodes and store.arrays["images"].shape[-2] == resolution else None


def corpus_stores(corpus_root: str | os.PathLike, cfg: BasePolicyConfig, workers: int = 1) -> list:
    """Record (or reuse) the corpus (``workers`` settings at a time) and ingest (or reuse) one store
    per corpus task at the model's image resolution."""
    from robosteer_assets.droid.reader import ReadConfig
    from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
    from robosteer_assets.vla.config import get_config

    corpus_root = Path(corpus_root)
    res = get_config(cfg.model).vision.resolution
    dirs = record_corpus(corpus_root / "demos", cfg.corpus, workers)
    stores = []
    for task, eps in dirs.items():
        store_dir = corpus_root / "store" / task
        store = _open_current(store_dir, len(eps), res)
        if store is None:
            ingest_task(corpus_root / "demos" / task, store_dir,
                        IngestConfig(read=ReadConfig(image_size=res), min_episodes=1))
            store = EpisodeStore.open(store_dir)
        stores.append(store)
    log.info("base policy corpus: %d tasks, %d episodes, %d steps", len(stores),
             sum(s.num_episodes for s in stores), sum(s.num_steps for s in stores))
    return stores


def build_base_policy(corpus_root: str | os.PathLike, out_dir: str | os.PathLike,
                      cfg: BasePolicyConfig = BasePolicyConfig(), workers: int = 1) -> dict:
    """Record (or reuse) the corpus with ``workers`` processes, ingest it, pretrain, export."""
    from robosteer_assets.sim.tasks import all_instructions

    stores = corpus_stores(corpus_root, cfg, workers)
    return train_base_policy(stores, out_dir, cfg, instructions=all_instructions())


def run_step(spec: BasePolicyConfig, logger, corpus_root: str, out: str) -> dict:
    """dagster-pipes step ``base_policy``: build the base policy into ``out`` from the corpus under
    ``corpus_root``."""
    logger.info("pretraining the embedded base policy (%s, %d steps, batch %d, held out: %s)", spec.model,
                spec.steps, spec.batch_size, list(spec.corpus.held_out_tasks))
    res = build_base_policy(corpus_root, out, spec)
    res.pop("losses", None)
    res.pop("log_rows", None)
    return res


def config_hash(model_cfg) -> str:
    """A short hash of a model config (``Pi0Config.to_dict``): what a shipped checkpoint must match."""
    import hashlib

    return hashlib.sha256(json.dumps(model_cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def install_base_policy(src: str | os.PathLike, dst: str | os.PathLike, model: str = "pi0_tiny") -> dict:
    """Check that the checkpoint ``src`` (the shipped base) was built for the ``model`` preset as the
    code defines it today, and copy it to ``dst`` atomically (unchanged copies are left alone).
    Raises ``ValueError`` naming both configs when they differ."""
    import shutil

    from robosteer_assets.common.atomic import atomic_dir
    from robosteer_assets.vla.checkpoint import read_checkpoint_config
    from robosteer_assets.vla.config import get_config

    src, dst = Path(src), Path(dst)
    if not (src / "params").is_dir():
        raise FileNotFoundError(f"{src}: no shipped base checkpoint (params/ missing); build it with "
                                f"`robosteer pretrain --out {src}`")
    have = read_checkpoint_config(src)["config"]
    want = get_config(model)
    if config_hash(have) != config_hash(want):
        raise ValueError(f"{src}: built for model config {have.to_dict()}, but {model!r} is now "
                         f"{want.to_dict()}; rebuild it with `robosteer pretrain` or set base_policy rebuild=True")
    stamp = json.dumps({"src": str(src.resolve()), "hash": config_hash(want),
                        "params": sorted((p.name, p.stat().st_size) for p in (src / "params").rglob("*") if p.is_file())})
    if (dst / ".installed_from").is_file() and (dst / ".installed_from").read_text() == stamp:
        return {"path": str(dst), "copied": False, "config_hash": config_hash(want)}
    with atomic_dir(dst) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        (Path(tmp) / ".installed_from").write_text(stamp)
    return {"path": str(dst), "copied": True, "config_hash": config_hash(want)}
