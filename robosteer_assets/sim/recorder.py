"""Record scripted-expert demonstrations in DROID's raw layout.

``record_demos(task, n, out_dir, seed, variation)`` rolls out the task's expert
from seeded placements drawn uniformly over the grid rectangle, checks each
episode with the task's success predicate and writes it with
``droid.writer.write_episode`` to ``<out_dir>/<task>/success/<uuid>`` or, when the
predicate is false at the end, ``<out_dir>/<task>/failure/<uuid>`` (DROID's
convention; discovery and ingest skip ``failure``). It keeps going until ``n``
successful demos exist or ``max_attempts`` episodes were tried, and returns the
successful episode folders.

Every field is in DROID's units (droid_facts.md §1.4): observed joint positions
(rad), joint velocities (rad/s), gripper position (0 open .. 1 closed), the
normalised ``action/joint_velocity`` command, ``action/gripper_position``, the
two cameras by serial, the instruction as metadata ``current_task``. One row per
6 Hz step: the observation at the start of the step and the action taken from
it. Episodes end ``post_success_steps`` after the first success, or at the
task's step limit. Everything (uuid, timestamps, placements) derives from
``(task, variation, seed, attempt)``, so the same call writes identical files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robosteer_assets.common.progress import Progress, get_logger
from robosteer_assets.sim.env import EXTERIOR_KEY, GRIPPER_KEY, JOINT_KEY, WRIST_KEY, TabletopEnv
from robosteer_assets.sim.grid import check_cell

if TYPE_CHECKING:
    from robosteer_assets.droid.episode import EpisodeRecording

log = get_logger("sim.recorder")

SIM_LAB = "ROBOSTEER-SIM"
BASE_TIME_MS = 1_700_000_000_000  # 2023-11-14: fixed so recordings are reproducible


@dataclass(frozen=True)
class RecordConfig:
    """``action_noise`` > 0 injects noise into the executed arm command (DART, Laskey et al. 2017):
    an AR(1) process ``n_t = persistence * n_{t-1} + action_noise * sqrt(1 - persistence^2) * e_t``
    in normalised command units, added to the expert's command before it is executed, while the
    recorded action stays the expert's own. The demos then show the expert correcting from states
    off its nominal path, which a cloned policy meets in closed loop. ``home_noise``: std (rad) of
    the start pose around home (``TabletopEnv.reset``). Both 0 reproduce plain expert demos."""

    image_size: int = 224
    post_success_steps: int = 3  # steps kept after the first success
    max_attempts_factor: float = 3.0  # at most ceil(factor * n) episodes are tried
    write_failures: bool = True
    action_noise: float = 0.0
    noise_persistence: float = 0.7
    home_noise: float = 0.0

    def __post_init__(self):
        if self.action_noise < 0 or self.home_noise < 0 or not 0 <= self.noise_persistence < 1:
            raise ValueError(f"RecordConfig: expected action_noise >= 0, home_noise >= 0 and 0 <= "
                             f"noise_persistence < 1; found {self}")


def action_perturbation(cfg: RecordConfig, seed: int):
    """The executed-action perturbation of ``cfg`` for one episode (None without noise)."""
    if cfg.action_noise <= 0:
        return None
    rng = np.random.default_rng([int(seed), 11])
    rho = cfg.noise_persistence
    state = np.zeros(7)

    def perturb(action: np.ndarray) -> np.ndarray:
        nonlocal state
        state = rho * state + cfg.action_noise * np.sqrt(1 - rho * rho) * rng.standard_normal(7)
        out = np.array(action, dtype=np.float64)
        out[:7] = np.clip(out[:7] + state, -1.0, 1.0)
        return out

    return perturb


def euler_xyz(R: np.ndarray) -> np.ndarray:
    """Extrinsic x-y-z Euler angles (scipy ``as_euler("xyz")``) of a rotation matrix."""
    return np.array([
        np.arctan2(R[2, 1], R[2, 2]),
        -np.arcsin(np.clip(R[2, 0], -1.0, 1.0)),
        np.arctan2(R[1, 0], R[0, 0]),
    ])


def episode_seed(seed: int, attempt: int) -> int:
    return int(seed) * 100_003 + int(attempt)


def episode_uuid(task: str, variation: str, seed: int, attempt: int, start_ms: int) -> str:
    """DROID's ``<lab>+<user_id>+<timestamp>`` with a user id hashed from the episode's identity."""
    from datetime import datetime, timezone

    h = hashlib.sha1(f"{task}|{variation}|{seed}|{attempt}".encode()).hexdigest()[:8]
    t = datetime.fromtimestamp(start_ms / 1000.0, tz=timezone.utc)
    return f"{SIM_LAB}+{h}+{t:%Y-%m-%d-%Hh-%Mm-%Ss}"


def record_episode(env: TabletopEnv, seed: int, uuid: str, start_ms: int, cfg: RecordConfig = RecordConfig(),
                   variation: str = "none", cell: tuple[int, int] | None = None):
    """Roll out the expert from ``env.reset(cell=cell, seed=seed)`` (a seeded placement anywhere on the
    grid when ``cell`` is None); return (EpisodeRecording, summary)."""
    from robosteer_assets.droid.episode import EpisodeRecording
    from robosteer_assets.sim.env import run_episode

    obs0 = env.reset(cell=cell, seed=seed, home_noise=cfg.home_noise)
    rows: dict[str, list] = {k: [] for k in ("q", "g", "qd", "cmd", "grip", "ext", "wrist", "cart")}

    def on_step(obs, action):
        rows["q"].append(obs[JOINT_KEY])
        rows["g"].append(float(obs[GRIPPER_KEY][0]))
        rows["qd"].append(env.joint_velocities())
        rows["cmd"].append(np.asarray(action[:7], dtype=np.float64))
        rows["grip"].append(float(np.clip(action[7], 0.0, 1.0)))
        rows["ext"].append(obs[EXTERIOR_KEY])
        rows["wrist"].append(obs[WRIST_KEY])
        R = env.view.pinch_xmat()
        rows["cart"].append(np.concatenate([env.view.pinch_pos(), euler_xyz(R)]))

    summary = run_episode(env, policy=None, post_success_steps=cfg.post_success_steps, on_step=on_step, obs=obs0,
                          perturb=action_perturbation(cfg, seed))
    cam = env.cfg.camera
    rec = EpisodeRecording(
        uuid=uuid,
        instruction=env.task.instruction,
        control_hz=env.cfg.control.control_hz,
        joint_positions=np.asarray(rows["q"], dtype=np.float64),
        gripper_positions=np.asarray(rows["g"], dtype=np.float64),
        joint_velocities=np.asarray(rows["qd"], dtype=np.float64),
        action_joint_velocity=np.asarray(rows["cmd"], dtype=np.float64),
        action_gripper_position=np.asarray(rows["grip"], dtype=np.float64),
        exterior_frames=np.asarray(rows["ext"], dtype=np.uint8),
        wrist_frames=np.asarray(rows["wrist"], dtype=np.uint8),
        exterior_serial=cam.exterior_serial,
        wrist_serial=cam.wrist_serial,
        success=bool(summary["success"]),
        cartesian_positions=np.asarray(rows["cart"], dtype=np.float64),
        start_time_ms=int(start_ms),
        extra_metadata={
            "lab": SIM_LAB,
            "user": "scripted expert",
            "user_id": uuid.split("+")[1],
            "building": "simulation",
            "robot_serial": "panda-sim",
            "source": "sim",
            "sim_task": env.task.name,
            "sim_variation": variation,
            "sim_seed": int(seed),
            "sim_action_noise": float(cfg.action_noise),
            "sim_home_noise": float(cfg.home_noise),
            "sim_placement": env.placement,
            "sim_first_success_step": summary["first_success_step"] if summary["first_success_step"] else -1,
        },
    )
    return rec, summary


def record_demos(task: str, n: int, out_dir: str | os.PathLike, seed: int = 0, variation: str = "none",
                 cfg: RecordConfig = RecordConfig(), env: TabletopEnv | None = None,
                 sink: Callable[[EpisodeRecording], Path] | None = None, colors: dict[str, str] | None = None,
                 folder: str | None = None, cells: Sequence[tuple[int, int]] | None = None) -> list[Path]:
    """Write ``n`` successful expert demos of ``task`` under ``<out_dir>/<folder>/success/`` (``folder``:
    the task name by default; ``colors``: object -> colour name, the corpus' colour family).

    Placements are seeded uniformly over the grid, or with ``cells`` (grid (row, col) pairs) the main
    object sits at those cells' centres in turn, demo ``i`` at ``cells[i % len(cells)]``, with the
    yaw, the other objects and the start pose drawn from the attempt's seed.

    Failed attempts go to ``<out_dir>/<task>/failure/`` (when ``cfg.write_failures``).
    Raises ``RuntimeError`` when fewer than ``n`` succeed within the attempt budget
    (the successful ones stay written). Returns the successful episode folders.

    With ``sink`` (e.g. ``droid.lerobot_writer.LeRobotWriter.add``) each successful
    recording is handed to it instead and failed attempts are not written (formats
    other than DROID's raw layout have no failure folder); returns what ``sink`` returns.
    """
    from robosteer_assets.droid.layout import episode_dir_for
    from robosteer_assets.droid.writer import write_episode

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive number of demos, found {n!r}")
    env = env or TabletopEnv(task, variation=variation, image_size=cfg.image_size, colors=colors)
    folder = folder or task
    if env.task.name != task or env.variation.name != variation:
        raise ValueError(f"env: expected a TabletopEnv for {task}/{variation}, "
                         f"found {env.task.name}/{env.variation.name}")
    cells = None if cells is None else [check_cell(*c, grid=env.grid) for c in cells]
    if cells is not None and not cells:
        raise ValueError("cells: expected at least one grid cell (row, col), found none")
    max_attempts = int(np.ceil(cfg.max_attempts_factor * n))
    out: list[Path] = []
    progress = Progress(log, f"sim demos {task} ({variation})", n)
    failures = 0
    for attempt in range(max_attempts):
        if len(out) >= n:
            break
        start_ms = BASE_TIME_MS + attempt * 60_000
        uuid = episode_uuid(folder, variation, seed, attempt, start_ms)
        cell = None if cells is None else cells[len(out) % len(cells)]
        rec, summary = record_episode(env, episode_seed(seed, attempt), uuid, start_ms, cfg, variation, cell)
        if rec.success:
            out.append(sink(rec) if sink else write_episode(episode_dir_for(out_dir, folder, uuid, success=True), rec))
            progress.update(1, steps=rec.num_steps)
        else:
            failures += 1
            kept = cfg.write_failures and sink is None
            log.warning("sim demos %s: attempt %d (seed %d) failed after %d steps%s",
                        task, attempt, episode_seed(seed, attempt), rec.num_steps,
                        "; written under failure/" if kept else "")
            if kept:
                write_episode(episode_dir_for(out_dir, folder, uuid, success=False), rec)
    if len(out) < n:
        raise RuntimeError(f"sim demos {task} ({variation}): only {len(out)} of {n} demos succeeded in "
                           f"{max_attempts} attempts; successes are in {Path(out_dir) / folder / 'success'}")
    log.info("sim demos %s (%s): %d demos, %d failed attempts", task, variation, len(out), failures)
    return out
