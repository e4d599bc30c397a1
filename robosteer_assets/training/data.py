"""Training data: action chunks from a task's episode stores.

Each example is one timestep ``r`` of an episode with its action chunk
``actions[r : r + horizon]`` (horizon = the model's ``action_horizon``); indices past the
episode's last step clamp to it, as openpi's RLDS DROID loader does. The stores' arrays are
decoded into memory once (few-shot: a few tens of demos; a zarr chunk holds 16 frames, so
per-sample reads would decode 16x).

:class:`ChunkDataset` gives *seeded, stateless* batches: the order is a permutation of all
timesteps per epoch, drawn from ``(seed, epoch)``, and batch ``i`` is positions
``i*B .. (i+1)*B`` of that endless sequence. So the data position is just the step: a resumed
run sees exactly the batches an uninterrupted run would. Batch shapes are fixed (no
partial last batch).

Object targets (pretraining in simulation only): each episode's recorded start placement
(``sim_placement`` in its DROID metadata) as one slot ``[x, y, cos k yaw, sin k yaw]`` per
object kind (cube, bowl, cup, button, marker, mug) with a mask, for the auxiliary
object-position objective of ``training.trainer``: positions in metres, yaw modulo the
kind's symmetry (k = 4 for a cube, 2 for a marker, 1 for a mug; masked for round objects,
whose yaw is invisible); kinds absent from the scene are masked.

Start oversampling (``start_frames``, ``start_repeats``): the first steps of each episode
appear ``start_repeats`` times per epoch. At an episode's start the arm has not moved yet,
so only the images say where the object is; these few frames decide the first chunk.

Norm stats: from the base checkpoint (openpi's practice when finetuning a released model on
its own robot, e.g. pi0-DROID) or computed from the demos (``vla.normalize``, openpi format).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robosteer_assets.common.progress import get_logger
from robosteer_assets.droid.chunks import chunk_indices, episode_ends

log = get_logger("training.data")

NORM_STATS_SOURCES = ("checkpoint", "demos")


class _Arrays:
    """The stores' arrays in memory plus each row's clamp index (its episode's last row)."""

    def __init__(self, stores, horizon: int):
        if not stores:
            raise ValueError("training data: expected at least one episode store, found none")
        if horizon < 1:
            raise ValueError(f"training data: action horizon must be >= 1, found {horizon}")
        self.stores, self.horizon = list(stores), horizon
        self.ends, self.ep_index, self.state, self.actions, self.images = [], [], [], [], []
        for s in self.stores:
            self.ends.append(episode_ends(s.episodes, s.num_steps, str(getattr(s, "path", s))))
            self.ep_index.append(np.asarray(s.arrays["episode_index"][:]))
            self.state.append(np.asarray(s.arrays["state"][:]))
            self.actions.append(np.asarray(s.arrays["actions"][:]))
            self.images.append(np.asarray(s.arrays["images"][:]))
        self.index = np.array([(si, r) for si, s in enumerate(self.stores) for r in range(s.num_steps)], np.int64)
        self._objects: list[tuple[np.ndarray, np.ndarray]] | None = None

    def episode_targets(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``episode_object_targets`` of each store, read from the metadata once."""
        if self._objects is None:
            self._objects = [episode_object_targets(s) for s in self.stores]
        return self._objects

    def object_targets(self, picks) -> tuple[np.ndarray, np.ndarray]:
        """``([B, OBJECT_TARGET_DIM] targets, [B, OBJECT_TARGET_DIM] mask)`` of each picked row's episode."""
        per_store = self.episode_targets()
        t = np.stack([per_store[int(si)][0][int(self.ep_index[si][r])] for si, r in picks])
        m = np.stack([per_store[int(si)][1][int(self.ep_index[si][r])] for si, r in picks])
        return t, m

    def gather(self, picks) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        images, state, chunks, prompts = [], [], [], []
        for si, r in picks:
            si, r = int(si), int(r)
            images.append(self.images[si][r])
            state.append(self.state[si][r])
            chunks.append(self.actions[si][chunk_indices(r, self.horizon, self.ends[si][r])])
            prompts.append(self.stores[si].episodes[int(self.ep_index[si][r])]["instruction"])
        return np.stack(images), np.stack(state), np.stack(chunks), prompts


class ChunkDataset(_Arrays):
    """Seeded epoch permutations; ``batch_at(step)`` is a pure function of (seed, step)."""

    def __init__(self, stores, horizon: int, batch_size: int, seed: int = 0, start_frames: int = 0,
                 start_repeats: int = 1):
        super().__init__(stores, horizon)
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, found {batch_size}")
        if start_frames < 0 or start_repeats < 1:
            raise ValueError(f"start oversampling: expected start_frames >= 0 and start_repeats >= 1, found "
                             f"{start_frames} and {start_repeats}")
        if start_frames and start_repeats > 1:
            extra = [(si, r) for si, s in enumerate(self.stores) for ep in s.episodes
                     for r in range(ep["start"], ep["start"] + min(start_frames, ep["length"]))]
            self.index = np.concatenate([self.index, np.array(extra * (start_repeats - 1), np.int64).reshape(-1, 2)])
        self.batch_size, self.seed = batch_size, seed
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(len(self.index))
        return self._perms[epoch]

    def positions(self, step: int) -> np.ndarray:
        n, B = len(self.index), self.batch_size
        pos = np.arange(step * B, (step + 1) * B, dtype=np.int64)
        return np.array([self._perm(int(p // n))[p % n] for p in pos], np.int64)

    def batch_at(self, step: int):
        """Batch number ``step``: (images, state, chunks, prompts), always ``batch_size`` examples."""
        return self.gather(self.index[self.positions(step)])

    def object_targets_at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The object targets of batch number ``step`` (same rows as ``batch_at(step)``)."""
        return self.object_targets(self.index[self.positions(step)])


@dataclass(frozen=True)
class DataConfig:
    norm_stats: str = "checkpoint"  # "checkpoint" (the base's) or "demos" (computed from the stores)

    def __post_init__(self):
        if self.norm_stats not in NORM_STATS_SOURCES:
            raise ValueError(f"DataConfig.norm_stats: expected one of {NORM_STATS_SOURCES}, "
                             f"found {self.norm_stats!r}")


# The object kinds of the simulated scenes, each with its own slot of the object targets, so that a
# linear probe from the image tokens reads "where is the cube" the same way in every task (a "main
# object" slot would need the task to know which object is meant). An object's kind is the part of
# its name after the colour ("red_cube" -> cube); k is its yaw symmetry order: it looks the same
# after a turn of 2 pi / k (a cube every quarter turn, a marker every half), 0 when round.
OBJECT_KINDS = (("cube", 4), ("bowl", 0), ("cup", 0), ("button", 0), ("marker", 2), ("mug", 1))
SLOT_DIM = 4  # x, y (metres), cos k yaw, sin k yaw
OBJECT_TARGET_DIM = SLOT_DIM * len(OBJECT_KINDS)
XY_COLUMNS = tuple([SLOT_DIM * j, SLOT_DIM * j + 1] for j in range(len(OBJECT_KINDS)))  # the position columns


def object_kind(name: str) -> int | None:
    """The slot of the object ``name`` in the object targets (None: not an object kind, e.g. a distractor)."""
    kind = name.rsplit("_", 1)[-1]
    return next((j for j, (k, _) in enumerate(OBJECT_KINDS) if k == kind), None)


def episode_object_targets(store) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode ``([E, OBJECT_TARGET_DIM] targets, mask)`` from the ``sim_placement`` of each
    episode's DROID metadata: for each object kind in the scene (``OBJECT_KINDS``), its start xy
    (metres) and, when it has a yaw symmetry, (cos k yaw, sin k yaw); kinds not in the scene are
    masked. Distractors are not targets. Raises naming the episode when a metadata file has no
    simulator placement (real-robot demos carry none) or names an object of no known kind."""
    import json

    from robosteer_assets.droid.layout import metadata_path
    from robosteer_assets.sim.objects import DISTRACTORS

    distractors = {d[0] for d in DISTRACTORS}
    targets = np.zeros((store.num_episodes, OBJECT_TARGET_DIM), np.float32)
    mask = np.zeros_like(targets)
    for i, ep in enumerate(store.episodes):
        path = metadata_path(Path(ep["path"]))
        meta = json.loads(path.read_text()) if path is not None else {}
        placement = meta.get("sim_placement")
        if not isinstance(placement, dict) or not isinstance(placement.get("objects"), dict):
            raise ValueError(f"{path or ep['path']}: field 'sim_placement.objects' (the objects' start poses) "
                             f"expected for the object-position objective, which needs simulated demos; "
                             f"found keys {sorted(meta)}")
        for name, pose in placement["objects"].items():
            if name in distractors:
                continue
            j = object_kind(name)
            if j is None:
                raise ValueError(f"{path}: field 'sim_placement.objects.{name}': expected an object of one of the "
                                 f"kinds {[k for k, _ in OBJECT_KINDS]} or a distractor")
            c, k = SLOT_DIM * j, OBJECT_KINDS[j][1]
            targets[i, c: c + 2] = pose[:2]
            mask[i, c: c + 2] = 1.0
            if k:
                targets[i, c + 2: c + 4] = np.cos(k * pose[2]), np.sin(k * pose[2])
                mask[i, c + 2: c + 4] = 1.0
    return targets, mask


def demo_norm_stats(stores) -> dict:
    """openpi-format norm stats (mean/std/q01/q99) of the demos' robot-dim state and actions."""
    from robosteer_assets.vla.normalize import compute_norm_stats

    return compute_norm_stats({"state": np.concatenate([np.asarray(s.arrays["state"][:]) for s in stores]),
                               "actions": np.concatenate([np.asarray(s.arrays["actions"][:]) for s in stores])})


def resolve_norm_stats(cfg: DataConfig, base_stats: dict, stores) -> dict:
    if cfg.norm_stats == "checkpoint":
        return base_stats
    stats = demo_norm_stats(stores)
    log.info("norm stats computed from %d demo steps", sum(s.num_steps for s in stores))
    return stats


def model_batch(mcfg, tokenizer, norm_stats, raw):
    """(images, state, chunks, prompts) -> (Observation, normalised padded actions) via
    ``vla.transforms.make_training_batch``."""
    from robosteer_assets.vla.transforms import make_training_batch

    images, state, chunks, prompts = raw
    return make_training_batch(mcfg, tokenizer, norm_stats, images, state, prompts, chunks)
