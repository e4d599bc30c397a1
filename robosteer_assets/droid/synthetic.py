"""Synthetic DROID episodes for tests and benchmarks (no robot, no simulator).

``make_recording`` builds a physically consistent ``EpisodeRecording``: a smooth
reach from DROID's reset pose, a pause, a gripper close, a lift; observed joint
velocities are the finite-difference of the joint positions (rad/s) and the
command ``action_joint_velocity`` is the next-step joint delta / 0.2 rad, as
DROID defines it. Frames are smooth colour fields with a moving square (they
compress well, so codec round trips stay close). ``write_task`` writes a whole
task folder of such episodes with ``droid.writer.write_episode``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robosteer_assets.droid.episode import MAX_JOINT_DELTA, EpisodeRecording
from robosteer_assets.droid.layout import episode_dir_for

RESET_Q = np.array([0.0, -np.pi / 5, 0.0, -4 * np.pi / 5, 0.0, 3 * np.pi / 5, 0.0])  # DROID reset pose


def _frames(T: int, H: int, W: int, rng: np.random.Generator, phase: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = rng.uniform(40, 200, size=3).astype(np.float32)
    grad = rng.uniform(-60, 60, size=(2, 3)).astype(np.float32)
    img = base + (yy / H)[..., None] * grad[0] + (xx / W)[..., None] * grad[1]
    out = np.empty((T, H, W, 3), dtype=np.uint8)
    side = max(2, min(H, W) // 5)
    colour = rng.uniform(0, 255, size=3)
    for t in range(T):
        f = img.copy()
        cy = int((0.2 + 0.6 * phase[t]) * (H - side))
        cx = int((0.8 - 0.6 * phase[t]) * (W - side))
        f[cy : cy + side, cx : cx + side] = colour
        out[t] = np.clip(f, 0, 255).astype(np.uint8)
    return out


def make_recording(
    T: int = 30,
    seed: int = 0,
    image_size: int | tuple[int, int] = 224,
    control_hz: float = 15.0,
    instruction: str = "pick up the red cube",
    uuid: str | None = None,
    success: bool = True,
    pause_steps: int | None = None,
    with_cartesian: bool = True,
) -> EpisodeRecording:
    """A deterministic synthetic episode of ``T`` steps.

    ``image_size``: an int for square frames or ``(height, width)`` (both even).
    ``pause_steps``: length of the still phase before the grasp (default T // 6).
    """
    if T < 2:
        raise ValueError(f"make_recording: expected T >= 2, found {T}")
    H, W = (image_size, image_size) if isinstance(image_size, int) else image_size
    rng = np.random.default_rng(seed)
    dt = 1.0 / control_hz
    pause = T // 6 if pause_steps is None else pause_steps
    n_move = max(1, T - pause)
    reach = max(1, n_move // 2)
    goal = RESET_Q + rng.uniform(-0.4, 0.4, size=7)
    lift = goal + rng.uniform(-0.2, 0.2, size=7)
    # phase in [0,1] per step: reach (smoothstep), pause, lift
    s = np.zeros(T)
    q = np.zeros((T, 7))
    for t in range(T):
        if t < reach:
            u = t / reach
            u = u * u * (3 - 2 * u)
            q[t] = RESET_Q + u * (goal - RESET_Q)
            s[t] = 0.5 * u
        elif t < reach + pause:
            q[t] = goal
            s[t] = 0.5
        else:
            u = (t - reach - pause + 1) / max(1, T - reach - pause)
            u = u * u * (3 - 2 * u)
            q[t] = goal + u * (lift - goal)
            s[t] = 0.5 + 0.5 * u
    joint_velocities = np.gradient(q, dt, axis=0) if T > 1 else np.zeros_like(q)
    joint_velocities[reach : reach + pause] = 0.0  # the robot is still during the pause
    cmd = np.zeros_like(q)
    cmd[:-1] = np.clip((q[1:] - q[:-1]) / MAX_JOINT_DELTA, -1.0, 1.0)
    close_at = reach + pause // 2
    gripper = np.where(np.arange(T) >= close_at, 1.0, 0.0)
    # the Robotiq closes over a few steps: observed position lags the command
    observed = np.convolve(np.concatenate([np.zeros(2), gripper]), np.ones(3) / 3, mode="valid")[:T]
    ext_frames = _frames(T, H, W, rng, s)
    wrist_frames = _frames(T, H, W, rng, s[::-1].copy())
    cart = None
    if with_cartesian:
        cart = np.concatenate([0.4 + 0.1 * np.sin(q[:, :3]), 0.1 * np.cos(q[:, 3:6])], axis=1)
    return EpisodeRecording(
        uuid=uuid or f"ROBOSTEER+{seed:08x}+2026-01-01-00h-00m-{seed % 60:02d}s",
        instruction=instruction,
        control_hz=float(control_hz),
        joint_positions=q,
        gripper_positions=observed,
        joint_velocities=joint_velocities,
        action_joint_velocity=cmd,
        action_gripper_position=gripper.astype(np.float64),
        exterior_frames=ext_frames,
        wrist_frames=wrist_frames,
        exterior_serial=f"2{seed % 1000:03d}0001",
        wrist_serial=f"1{seed % 1000:03d}0002",
        success=success,
        extra_metadata={"lab": "ROBOSTEER", "user_id": f"{seed:08x}"[-8:], "synthetic": True},
        cartesian_positions=cart,
        start_time_ms=1_767_225_600_000 + seed * 60_000,
    )


def write_task(
    root: str | os.PathLike,
    task: str,
    n: int,
    T: int = 30,
    image_size: int | tuple[int, int] = 64,
    control_hz: float = 15.0,
    seed: int = 0,
    instruction: str = "pick up the red cube",
) -> list[Path]:
    """Write ``n`` synthetic success episodes of ``task`` under ``root``; returns their folders."""
    from robosteer_assets.droid.writer import write_episode

    out = []
    for i in range(n):
        rec = make_recording(T=T, seed=seed + i, image_size=image_size, control_hz=control_hz, instruction=instruction)
        out.append(write_episode(episode_dir_for(root, task, rec.uuid, success=True), rec))
    return out
