"""Keyframes of an episode (paper §3.2 / A.2, following RoboPrompt, Yin et al. 2025).

The rule is RoboPrompt's / PerAct's keypoint discovery (droid_facts.md §4.2),
adapted to DROID's signals:

* "gripper open" is ``gripper_position < gripper_threshold`` (DROID's gripper is
  continuous, 0 = open .. 1 = closed; RLBench's is binary);
* "stopped" at step i: ``stop_buffer <= 0``, every joint ``|observed velocity|
  <= stop_velocity`` (rad/s, ``observation/robot_state/joint_velocities``, not the
  normalised command), ``i != T-2``, and the gripper state unchanged over the
  window: ``i < T-2`` and ``open[i] == open[i+1] == open[i-1]`` and
  ``open[i-2] == open[i-1]``. The buffer is reset to ``stop_buffer`` (4) after
  a stop and decremented otherwise, so stopped keyframes are >= 4 steps apart.
* step i > 0 is a keyframe if the gripper state changed since step i-1, or it
  is the last step, or it is stopped;
* if the last two keyframes are adjacent, the earlier one is dropped.

Negative-index quirk: RoboPrompt indexes ``open[i-1]`` / ``open[i-2]`` with
Python's negative indices, so for i = 0, 1 the window wraps around to the end
of the episode. We clamp the indices to 0 instead (as RVT does): the window
at the start of the episode only looks at real earlier steps.

Optional idle filter (openpi's DROID non-idle ranges, droid_facts §4.3,
``KeyframeConfig.idle_filter``): a step is idle when no joint of the command
``action/joint_velocity`` changed by ``idle_eps`` or more since the previous
step; idle runs of >= ``min_idle_len`` steps are removed, remaining runs
shorter than ``min_non_idle_len`` are dropped and the last ``filter_last_n``
steps of each run are cut. Keyframes outside the kept ranges are discarded.
The lengths are in recorded steps (openpi's values are for 15 Hz).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class KeyframeConfig:
    """The keyframe rule (module docstring) and the optional idle filter."""

    gripper_threshold: float = field(default=0.5, metadata={
        "description": "gripper_position below this = open (binarises the continuous gripper)"})
    stop_velocity: float = field(default=0.1, metadata={
        "description": "'stopped' when every |joint velocity| <= this (rad/s)"})
    stop_buffer: int = field(default=4, metadata={"description": "steps between two 'stopped' keyframes"})
    idle_filter: bool = field(default=False, metadata={"description": "drop openpi-style idle ranges first"})
    idle_eps: float = field(default=1e-3, metadata={
        "description": "idle filter: a step is idle when no command joint changed by this much"})
    min_idle_len: int = field(default=7, metadata={"description": "idle filter: shortest idle run removed (steps)"})
    min_non_idle_len: int = field(default=16, metadata={
        "description": "idle filter: shorter remaining runs are dropped (steps)"})
    filter_last_n: int = field(default=10, metadata={"description": "idle filter: steps cut from the end of each run"})


def _check(gripper: np.ndarray, joint_velocities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(gripper, dtype=np.float64).reshape(-1)
    v = np.asarray(joint_velocities, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] != g.shape[0]:
        raise ValueError(
            f"keyframe_indices: expected gripper [T] and joint_velocities [T, J] with equal T, "
            f"found {np.shape(gripper)} and {np.shape(joint_velocities)}"
        )
    return g, v


def nonidle_ranges(action_joint_velocity: np.ndarray, cfg: KeyframeConfig = KeyframeConfig()) -> list[tuple[int, int]]:
    """openpi's non-idle ranges as half-open ``[start, end)`` step ranges."""
    cmd = np.asarray(action_joint_velocity, dtype=np.float64)
    T = cmd.shape[0]
    if T == 0:
        return []
    idle = np.zeros(T, dtype=bool)
    idle[1:] = np.all(np.abs(np.diff(cmd, axis=0)) < cfg.idle_eps, axis=1)
    keep = np.ones(T, dtype=bool)
    for start, end in _runs(idle):
        if end - start >= cfg.min_idle_len:
            keep[start:end] = False
    out = []
    for start, end in _runs(keep):
        if end - start >= cfg.min_non_idle_len and end - cfg.filter_last_n > start:
            out.append((start, end - cfg.filter_last_n))
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ranges where ``mask`` is True."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.where(d == 1)[0].tolist(), np.where(d == -1)[0].tolist()))


def keyframe_indices(
    gripper: np.ndarray,
    joint_velocities: np.ndarray,
    cfg: KeyframeConfig = KeyframeConfig(),
    action_joint_velocity: np.ndarray | None = None,
) -> np.ndarray:
    """Keyframe step indices (sorted int64) of one episode.

    ``gripper`` [T]: observed gripper position (0 open .. 1 closed);
    ``joint_velocities`` [T, 7]: observed rad/s; ``action_joint_velocity`` [T, 7]:
    only needed with ``cfg.idle_filter``.
    """
    g, v = _check(gripper, joint_velocities)
    T = g.shape[0]
    if T == 0:
        return np.zeros(0, dtype=np.int64)
    is_open = g < cfg.gripper_threshold
    small = np.all(np.abs(v) <= cfg.stop_velocity, axis=1)
    keys: list[int] = []
    prev_open = is_open[0]
    buffer = 0
    for i in range(T):
        im1, im2 = max(i - 1, 0), max(i - 2, 0)  # clamped (RoboPrompt wraps around)
        unchanged = (
            i < T - 2
            and is_open[i] == is_open[i + 1]
            and is_open[i] == is_open[im1]
            and is_open[im2] == is_open[im1]
        )
        stopped = buffer <= 0 and bool(small[i]) and i != T - 2 and unchanged
        buffer = cfg.stop_buffer if stopped else buffer - 1
        if i != 0 and (is_open[i] != prev_open or i == T - 1 or stopped):
            keys.append(i)
        prev_open = is_open[i]
    if len(keys) > 1 and keys[-1] - 1 == keys[-2]:
        keys.pop(-2)
    out = np.asarray(keys, dtype=np.int64)
    if cfg.idle_filter:
        if action_joint_velocity is None:
            raise ValueError("keyframe_indices: idle_filter needs action_joint_velocity [T, 7]")
        cmd = np.asarray(action_joint_velocity)
        if cmd.shape[0] != T:
            raise ValueError(f"keyframe_indices: action_joint_velocity has {cmd.shape[0]} steps, expected {T}")
        ranges = nonidle_ranges(cmd, cfg)
        inside = np.zeros(T, dtype=bool)
        for s, e in ranges:
            inside[s:e] = True
        out = out[inside[out]]
    return out


def plot_keyframes(
    joint_velocities: np.ndarray,
    keyframes: np.ndarray,
    gripper: np.ndarray | None = None,
    cfg: KeyframeConfig = KeyframeConfig(),
    title: str = "joint speeds and keyframes",
    control_hz: float | None = None,
) -> bytes:
    """PNG of one episode's per-joint |velocity| (rad/s), the stop threshold, the
    gripper position and the keyframes as vertical lines."""
    from robosteer_assets.common.plots import figure_png, new_figure

    v = np.abs(np.asarray(joint_velocities, dtype=np.float64))
    T = v.shape[0]
    t = np.arange(T) / control_hz if control_hz else np.arange(T)
    fig, ax = new_figure(8.0, 3.5)
    for j in range(v.shape[1]):
        ax.plot(t, v[:, j], lw=0.8, alpha=0.6, label=f"|dq{j + 1}|")
    ax.axhline(cfg.stop_velocity, color="k", ls=":", lw=1, label="stop threshold")
    for n, k in enumerate(np.asarray(keyframes, dtype=int)):
        ax.axvline(t[k], color="red", lw=1.2, alpha=0.8, label="keyframe" if n == 0 else None)
    ax.set_xlabel("time [s]" if control_hz else "step")
    ax.set_ylabel("joint speed [rad/s]")
    ax.set_title(title)
    if gripper is not None:
        ax2 = ax.twinx()
        ax2.plot(t, np.asarray(gripper).reshape(-1), color="gray", lw=1.5, ls="--", label="gripper")
        ax2.set_ylim(-0.05, 1.05)
        ax2.set_ylabel("gripper (0 open, 1 closed)")
    ax.legend(loc="upper right", fontsize=6, ncol=2)
    return figure_png(fig)


def episode_keyframes(ep, cfg: KeyframeConfig = KeyframeConfig()) -> np.ndarray:
    """``keyframe_indices`` of a ``droid.episode.Episode`` (rows at the episode's rate):
    its observed gripper, observed joint velocities and, for the idle filter, its
    ``action/joint_velocity`` commands."""
    return keyframe_indices(ep.state[:, 7], ep.joint_velocities, cfg, action_joint_velocity=ep.actions[:, :7])
