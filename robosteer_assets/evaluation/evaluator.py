"""Sim evaluator: the paper's 40-placement grid protocol in the simulated tabletop.

For one (task, policy, method, variation) every grid cell is one trial: ``TabletopEnv.reset(cell,
seed)`` puts the task's object at the cell centre with the seeded trial yaw, and the policy is
queried *through the client interface* (``infer(obs) -> {"actions": [T, 8]}``: a websocket
``PolicyClient`` for a served checkpoint, a ``LocalPolicyClient`` over an in-process ``Policy``, or
the scripted expert / a random policy for harness checks). As openpi's DROID robot client does, the
first ``actions_per_chunk`` actions of each chunk are executed (joint-velocity commands clipped to
[-1, 1], the gripper binarised at 0.5), then the policy is asked again.

A trial ends ``post_success_steps`` steps after the task's success predicate first holds, or at the
step limit (default: the task's own). It succeeds when the predicate holds at the end. Failure
reasons: ``step_limit`` (never succeeded), ``success_not_held`` (succeeded, then lost it, e.g. the
cube slipped), ``policy_error: ...`` (the policy raised or the server sent an error),
``bad_action: ...`` (a chunk of the wrong shape or with NaN/inf).

Trials are independent: with ``workers > 1`` they run in spawned processes, each holding its own
simulator and policy. A trial's result does not depend on the worker it ran in: placements come
from (seed, row, col) and, for an in-process checkpoint policy, the noise sequence is restarted per
trial from the same numbers (``Policy.reseed``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from robosteer_assets.common.progress import Progress, get_logger
from robosteer_assets.sim.grid import DEFAULT_GRID, GridConfig, cell_center, trial_yaw
from robosteer_assets.sim.variations import VariationName

log = get_logger("evaluation.evaluator")

PolicyKind = Literal["checkpoint", "server", "expert", "random"]


class EvalError(ValueError):
    """A sim evaluation that cannot start (bad task, cell, policy spec)."""


@dataclass(frozen=True)
class PolicySpec:
    """Which policy the trials query.

    ``checkpoint``: a checkpoint directory loaded in each worker (``vla.policy.Policy``) and called
    through ``LocalPolicyClient``; ``server``: a running ``robosteer serve`` at ``host:port``;
    ``expert``: the task's scripted expert (harness check: should score >= 90 %); ``random``:
    uniform random joint velocities and gripper (harness check: near 0 %)."""

    kind: PolicyKind = "checkpoint"
    checkpoint: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    config_name: str = ""  # for a checkpoint without robosteer_config.json (an openpi one)
    tokenizer_path: str = ""

    def __post_init__(self):
        if self.kind not in ("checkpoint", "server", "expert", "random"):
            raise EvalError(f"policy.kind: expected checkpoint, server, expert or random, found {self.kind!r}")
        if self.kind == "checkpoint" and not self.checkpoint:
            raise EvalError("policy.checkpoint: expected a checkpoint directory for kind 'checkpoint'")


@dataclass(frozen=True)
class SimEvalConfig:
    """The grid protocol: one trial per cell of the 5 x 8 placement grid."""

    variation: VariationName = field(default="none", metadata={"description": "scene variation of the trials"})
    actions_per_chunk: int = field(default=8, metadata={
        "description": "execute the first n actions of each chunk (openpi DROID client: 8)"})
    max_steps: int | None = field(default=None, metadata={
        "description": "step limit per trial in 6 Hz steps; unset = the task's own limit"})
    post_success_steps: int = field(default=3, metadata={
        "description": "steps the success must hold before the trial ends"})
    num_steps: int = field(default=10, metadata={
        "description": "Euler steps of the flow-matching sampler of a checkpoint policy (openpi: 10)"})
    noise_scale: float = field(default=1.0, metadata={
        "description": "std of the flow's starting noise for a checkpoint policy (openpi: 1; 0: one deterministic "
                       "chunk per observation)"})
    seed: int = field(default=0, metadata={"description": "trial yaws and policy noise derive from (seed, row, col)"})
    workers: int = field(default=1, metadata={
        "description": "trials run in this many processes (each loads the policy)"})
    image_size: int = field(default=224, metadata={"description": "side of the rendered camera images"})
    binarize_gripper: bool = field(default=True, metadata={
        "description": "gripper command thresholded at 0.5 (openpi DROID client) instead of clipped to [0, 1]"})
    record_video: bool = field(default=False, metadata={"description": "one MP4 per trial (exterior | wrist)"})
    video_dir: str = field(default="", metadata={"description": "where the trial videos go (record_video)"})
    cells: tuple[tuple[int, int], ...] | None = field(default=None, metadata={
        "description": "only these (row, col) cells; unset = every cell of the grid"})
    grid: GridConfig = field(default_factory=lambda: DEFAULT_GRID)

    def __post_init__(self):
        for name in ("actions_per_chunk", "workers", "num_steps"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise EvalError(f"{name}: expected a positive integer, found {v!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, (int, np.integer)) or self.max_steps < 1):
            raise EvalError(f"max_steps: expected a positive integer or None, found {self.max_steps!r}")
        if self.record_video and not self.video_dir:
            raise EvalError("video_dir: expected a directory when record_video is on")

    def trial_cells(self) -> list[tuple[int, int]]:
        if self.cells is None:
            return self.grid.cells()
        from robosteer_assets.sim.grid import check_cell

        return [check_cell(int(r), int(c), self.grid) for r, c in self.cells]


# ----------------------------------------------------------------------------- harness policies

class ExpertClient:
    """The scripted expert behind the client interface: a one-action chunk per call."""

    def __init__(self, env):
        self.env = env

    def get_server_metadata(self) -> dict:
        return {"policy": "scripted expert"}

    def infer(self, obs: dict) -> dict:
        return {"actions": self.env.expert_action()[None]}

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class RandomClient:
    """Uniform random chunks (joint velocities in [-1, 1], gripper in [0, 1]), seeded per trial."""

    def __init__(self, horizon: int = 10, seed: int = 0):
        self.horizon = horizon
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def get_server_metadata(self) -> dict:
        return {"policy": "random"}

    def infer(self, obs: dict) -> dict:
        a = self.rng.uniform(-1.0, 1.0, (self.horizon, 8))
        a[:, 7] = self.rng.uniform(0.0, 1.0, self.horizon)
        return {"actions": a}

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def executed_action(a, binarize_gripper: bool = True) -> np.ndarray:
    """What the simulator executes for a policy's action: joint velocities clipped to [-1, 1], the
    gripper thresholded at 0.5 (openpi's DROID client) or clipped to [0, 1]."""
    a = np.asarray(a, np.float64).copy()
    a[:7] = np.clip(a[:7], -1.0, 1.0)
    a[7] = float(a[7] > 0.5) if binarize_gripper else float(np.clip(a[7], 0.0, 1.0))
    return a


def trial_noise_seed(seed: int, row: int, col: int) -> int:
    """The policy-noise seed of trial (row, col): fixed by the numbers, not by the worker."""
    return int.from_bytes(hashlib.sha1(f"{seed}/{row}/{col}".encode()).digest()[:4], "little")


# ----------------------------------------------------------------------------- one trial

class _Runner:
    """A simulator and a policy client, reused over the trials of one worker."""

    def __init__(self, task: str, spec: PolicySpec, cfg: SimEvalConfig):
        from robosteer_assets.sim.env import TabletopEnv

        self.task, self.spec, self.cfg = task, spec, cfg
        # images are rendered by hand, only when the policy is queried (or a video is recorded)
        self.env = TabletopEnv(task, variation=cfg.variation, image_size=cfg.image_size, grid=cfg.grid,
                               render_images=False)
        self.policy = None
        if spec.kind == "checkpoint":
            from robosteer_assets.evaluation.client import LocalPolicyClient
            from robosteer_assets.vla.policy import Policy

            kw = {}
            if spec.config_name:
                from robosteer_assets.vla.config import get_config

                kw["cfg"] = get_config(spec.config_name)
            if spec.tokenizer_path:
                kw["tokenizer_path"] = spec.tokenizer_path
            self.policy = Policy.from_checkpoint(spec.checkpoint, num_steps=cfg.num_steps,
                                                 noise_scale=cfg.noise_scale, **kw)
            self.client = LocalPolicyClient(self.policy)
        elif spec.kind == "server":
            from robosteer_assets.evaluation.client import PolicyClient

            self.client = PolicyClient(spec.host, spec.port)
        elif spec.kind == "expert":
            self.client = ExpertClient(self.env)
        else:
            self.client = RandomClient(seed=cfg.seed)

    def _reconnect(self) -> None:
        """A server closes the connection after an error; the next trial gets a new one."""
        if self.spec.kind == "server":
            from robosteer_assets.evaluation.client import PolicyClient

            try:
                self.client.close()
            except Exception:
                pass
            self.client = PolicyClient(self.spec.host, self.spec.port)
        elif self.spec.kind == "checkpoint":
            from robosteer_assets.evaluation.client import LocalPolicyClient

            self.client = LocalPolicyClient(self.policy)

    def _observe(self, frames: list | None) -> dict:
        from robosteer_assets.sim.env import EXTERIOR_KEY, WRIST_KEY

        obs = self.env.observation()
        obs[EXTERIOR_KEY], obs[WRIST_KEY] = self.env.render()
        if frames is not None:
            frames.append(np.concatenate([obs[EXTERIOR_KEY], obs[WRIST_KEY]], axis=1))
        return obs

    def run(self, cell: tuple[int, int], run_id: str, method: str, checkpoint_id: str) -> dict:
        cfg, env = self.cfg, self.env
        row, col = cell
        seed = int(cfg.seed)
        noise_seed = trial_noise_seed(seed, row, col)
        if self.policy is not None:
            self.policy.reseed(noise_seed)
        if isinstance(self.client, RandomClient):
            self.client.reseed(noise_seed)
        t0 = time.monotonic()
        env.reset(cell=(row, col), seed=seed)
        limit = cfg.max_steps or env.task.step_limit
        frames: list | None = [] if cfg.record_video else None
        steps, first_success, reason = 0, None, None
        while steps < limit and reason is None:
            obs = self._observe(frames if steps == 0 else None)
            try:
                chunk = np.asarray(self.client.infer(obs)["actions"], dtype=np.float64)
            except Exception as e:  # policy / server error: this trial fails, the others go on
                reason = f"policy_error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
                self._reconnect()
                break
            if chunk.ndim != 2 or chunk.shape[1] != 8 or chunk.shape[0] < 1 or not np.all(np.isfinite(chunk)):
                reason = f"bad_action: expected a finite [T, 8] chunk, found shape {chunk.shape}"
                break
            for a in chunk[: cfg.actions_per_chunk]:
                env.step(executed_action(a, cfg.binarize_gripper))
                steps += 1
                if frames is not None:
                    ext, wrist = env.render()
                    frames.append(np.concatenate([ext, wrist], axis=1))
                if first_success is None and env.success():
                    first_success = steps
                if steps >= limit or (first_success is not None and steps - first_success >= cfg.post_success_steps):
                    break
            if first_success is not None and steps - first_success >= cfg.post_success_steps:
                break
        ok = reason is None and env.success()
        if reason is None and not ok:
            reason = "success_not_held" if first_success is not None else "step_limit"
        video = None
        if frames:
            video = str(self._write_video(frames, run_id, method, row, col))
        x, y = cell_center(row, col, cfg.grid)
        return {"task": self.task, "method": method, "checkpoint_id": checkpoint_id, "variation": cfg.variation,
                "row": row, "col": col, "x": x, "y": y, "yaw": trial_yaw(seed, row, col, cfg.grid), "seed": seed,
                "success": bool(ok), "steps": int(steps), "duration_s": float(time.monotonic() - t0),
                "failure_reason": None if ok else reason, "run_id": run_id, "source": "sim", "video_path": video}

    def _write_video(self, frames: list, run_id: str, method: str, row: int, col: int) -> Path:
        from robosteer_assets.common.atomic import TMP_PREFIX
        from robosteer_assets.droid.writer import write_mp4

        out = Path(self.cfg.video_dir) / self.task / method / run_id / f"r{row}c{col}.mp4"
        tmp = out.with_name(f"{TMP_PREFIX}{out.name}")
        write_mp4(tmp, np.stack(frames), fps=self.env.cfg.control.control_hz)
        os.replace(tmp, out)
        return out

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self.env.close()


# ----------------------------------------------------------------------------- worker processes

_WORKER: _Runner | None = None


def _init_worker(task: str, spec: PolicySpec, cfg: SimEvalConfig) -> None:
    global _WORKER
    from robosteer_assets.common.jaxsetup import configure_jax

    if spec.kind == "checkpoint":
        configure_jax()
    logging.basicConfig(level=logging.WARNING)
    _WORKER = _Runner(task, spec, cfg)


def _run_in_worker(cell, run_id: str, method: str, checkpoint_id: str) -> dict:
    assert _WORKER is not None
    return _WORKER.run(tuple(cell), run_id, method, checkpoint_id)


def _checkpoint_id(spec: PolicySpec) -> str:
    if spec.kind == "checkpoint":
        from robosteer_assets.vla.checkpoint import checkpoint_fingerprint

        return checkpoint_fingerprint(spec.checkpoint)
    if spec.kind == "server":
        return f"server:{spec.host}:{spec.port}"
    return spec.kind


def evaluate(task: str, policy: PolicySpec, method: str, cfg: SimEvalConfig = SimEvalConfig(),
             run_id: str | None = None, checkpoint_id: str | None = None) -> list[dict]:
    """Run the grid trials of ``task`` with ``policy``; return one trial row per cell (the
    ``evaluation.trials`` columns, unwritten: ``write_trials`` stores them)."""
    from robosteer_assets.evaluation.trials import new_run_id
    from robosteer_assets.sim.tasks import TASKS

    if task not in TASKS:
        raise EvalError(f"task: expected one of the simulated tasks {sorted(TASKS)}, found {task!r}")
    if policy.kind == "checkpoint" and not Path(policy.checkpoint).is_dir():
        raise EvalError(f"policy.checkpoint: {policy.checkpoint}: checkpoint directory not found")
    cells = cfg.trial_cells()
    run_id = run_id or new_run_id()
    checkpoint_id = checkpoint_id if checkpoint_id is not None else _checkpoint_id(policy)
    workers = min(cfg.workers, len(cells))
    log.info("%s / %s (%s, variation %s): %d trials, %d worker(s), first %d actions of each chunk, run %s",
             task, method, checkpoint_id, cfg.variation, len(cells), workers, cfg.actions_per_chunk, run_id)
    progress = Progress(log, f"{task}/{method} trials", len(cells), every_s=10.0)
    rows: list[dict] = []
    t0 = time.monotonic()

    def done(row: dict) -> None:
        rows.append(row)
        progress.update(successes=sum(r["success"] for r in rows))

    if workers == 1:
        runner = _Runner(task, policy, cfg)
        try:
            for cell in cells:
                done(runner.run(cell, run_id, method, checkpoint_id))
        finally:
            runner.close()
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(task, policy, cfg)) as pool:
            futs = [pool.submit(_run_in_worker, cell, run_id, method, checkpoint_id) for cell in cells]
            for f in as_completed(futs):
                done(f.result())
    rows.sort(key=lambda r: (r["row"], r["col"]))
    n_ok = sum(r["success"] for r in rows)
    log.info("%s / %s: %d/%d successes (%.0f %%) in %.1f s", task, method, n_ok, len(rows),
             100.0 * n_ok / max(1, len(rows)), time.monotonic() - t0)
    return rows


def success_grid(rows: list[dict], grid: GridConfig = DEFAULT_GRID) -> np.ndarray:
    """[rows, cols] success rate per cell (NaN where no trial), for heatmaps."""
    s = np.zeros((grid.rows, grid.cols))
    n = np.zeros((grid.rows, grid.cols))
    for r in rows:
        s[r["row"], r["col"]] += bool(r["success"])
        n[r["row"], r["col"]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def run_step(cfg: SimEvalConfig, logger, *, task: str, method: str, checkpoint: str, trials_root: str,
             config_name: str = "", tokenizer_path: str = "") -> dict:
    """dagster-pipes step ``sim_eval``: the grid trials of ``checkpoint`` on ``task``, written to the trial
    store ``trials_root`` under ``method``; returns a summary. ``config_name`` / ``tokenizer_path``: for a
    checkpoint without ``robosteer_config.json`` (openpi's)."""
    from robosteer_assets.evaluation.trials import write_trials

    policy = PolicySpec(kind="checkpoint", checkpoint=checkpoint, config_name=config_name,
                        tokenizer_path=tokenizer_path)
    logger.info(f"sim evaluation of {task} / {method} ({policy.kind} {policy.checkpoint})")
    rows = evaluate(task, policy, method, cfg)
    path = write_trials(trials_root, rows)
    n_ok = sum(r["success"] for r in rows)
    reasons: dict[str, int] = {}
    for r in rows:
        if not r["success"]:
            key = (r["failure_reason"] or "").split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
    return {"trials": len(rows), "successes": n_ok, "success_rate": n_ok / max(1, len(rows)),
            "trials_file": str(path), "run_id": rows[0]["run_id"] if rows else "",
            "checkpoint_id": rows[0]["checkpoint_id"] if rows else "",
            "eval_s": round(sum(r["duration_s"] for r in rows), 1), "failure_reasons": reasons,
            "success_grid": success_grid(rows, cfg.grid).tolist()}

