"""``TabletopEnv``: the simulated DROID platform for closed-loop policies (docs/ARCHITECTURE.md).

Action (8): 7 joint velocities in DROID's normalised ``action/joint_velocity``
units (joint delta per 1/6 s step = command x 0.2 rad; clipped to [-1, 1] and to
the Panda's velocity limits) + the gripper position in [0, 1] (0 open, 1
closed). Each 6 Hz step integrates the velocity into the position-servo
targets over the 83 physics substeps (``q_target += v * dt`` every substep, the
target carried over from step to step so the commanded deltas add up like
DROID's ``action/joint_position = q + joint_velocity * 0.2``; the target never
leads the measured joints by more than ``ControlConfig.max_target_lead`` rad, so
a blocked arm does not wind up) and sets the 2F-85 actuator to ``255 * gripper``.

Observation: a dict with openpi's DROID request keys
(``observation/exterior_image_1_left``, ``observation/wrist_image_left``: uint8
S x S x 3; ``observation/joint_position`` (7, rad);
``observation/gripper_position`` (1, 0 open .. 1 closed); ``prompt``).

Everything is deterministic given ``reset``'s seed (and cell): placements, yaws,
the other object and the distractors come from ``numpy.random.default_rng``
seeded with ``[seed, row, col]`` (trials) or ``[seed]`` (demos).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from robosteer_assets.sim.config import SimConfig
from robosteer_assets.sim.grid import DEFAULT_GRID, GridConfig, cell_center, check_cell, trial_yaw
from robosteer_assets.sim.objects import DISTRACTORS
from robosteer_assets.sim.scene import ARM_ACTUATORS, ARM_JOINTS, EXTERIOR_CAMERA, GRIPPER_ACTUATOR, WRIST_CAMERA, build_model
from robosteer_assets.sim.state import SceneView
from robosteer_assets.sim.tasks import Latches, SuccessConfig, TaskSpec, get_task
from robosteer_assets.sim.variations import Variation, get_variation

import mujoco  # noqa: E402  (after robosteer_assets.sim set MUJOCO_GL)

EXTERIOR_KEY = "observation/exterior_image_1_left"
WRIST_KEY = "observation/wrist_image_left"
JOINT_KEY = "observation/joint_position"
GRIPPER_KEY = "observation/gripper_position"
PROMPT_KEY = "prompt"


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class TabletopEnv:
    """One task's scene; ``reset`` places the objects, ``step`` runs one 6 Hz control step.

    ``render_images=False`` skips the cameras (observations then carry no image
    keys) -- for fast expert sweeps; policies need the default.
    """

    def __init__(self, task: str, variation: str = "none", image_size: int = 224, cfg: SimConfig | None = None,
                 grid: GridConfig = DEFAULT_GRID, success_cfg: SuccessConfig = SuccessConfig(),
                 render_images: bool = True, colors: dict[str, str] | None = None):
        from robosteer_assets.sim.tasks import color_rgba

        self.task: TaskSpec = get_task(task)
        self.variation: Variation = get_variation(variation)
        self.colors = dict(colors or {})
        unknown = sorted(set(self.colors) - set(self.task.objects))
        if unknown:
            raise ValueError(f"colors: objects {unknown} are not in task {task!r} (objects {self.task.objects})")
        if self.colors:
            self.variation = replace(self.variation, style=replace(self.variation.style, colors=color_rgba(self.colors)))
        self.instruction = self.task.instruction_for(self.colors)
        if not isinstance(image_size, int) or image_size < 16 or image_size % 2:
            raise ValueError(f"image_size: expected an even integer >= 16, found {image_size!r}")
        base = cfg or SimConfig()
        self.cfg = replace(base, camera=replace(base.camera, image_size=image_size))
        self.grid, self.success_cfg, self.render_images = grid, success_cfg, render_images
        self.model = build_model(self.task.objects, self.variation, self.cfg)
        self.data = mujoco.MjData(self.model)
        self.view = SceneView(self.model, self.data)
        m = self.model
        self._arm_act = np.array([m.actuator(a).id for a in ARM_ACTUATORS])
        self._grip_act = m.actuator(GRIPPER_ACTUATOR).id
        self._n_sub = self.cfg.substeps
        self._renderer: mujoco.Renderer | None = None
        self._expert = None
        self.latches = Latches()
        self.num_steps = 0
        self.placement: dict[str, Any] = {}
        self._was_reset = False
        self._q_target = np.asarray(self.cfg.control.home_qpos, dtype=np.float64)

    # ------------------------------------------------------------------ placement
    def _free_adr(self, body: str) -> int:
        return int(self.model.jnt_qposadr[self.model.joint(f"{body}_free").id])

    def _place(self, body: str, x: float, y: float, yaw: float) -> None:
        m, d = self.model, self.data
        if body == "red_button":
            mid = m.body_mocapid[m.body(body).id]
            d.mocap_pos[mid] = [x, y, 0.0]
            d.mocap_quat[mid] = _yaw_quat(yaw)
            return
        adr = self._free_adr(body)
        z0 = float(m.body_pos[m.body(body).id][2])  # resting height the builder gave it
        d.qpos[adr: adr + 3] = [x, y, z0 + 0.001]
        d.qpos[adr + 3: adr + 7] = _yaw_quat(yaw)

    def _sample_near(self, rng: np.random.Generator, anchors: list[np.ndarray], lo: float, hi: float,
                     what: str) -> tuple[float, float]:
        (x0, x1), (y0, y1) = self.grid.x_range, self.grid.y_range
        for _ in range(2000):
            p = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            dist = [np.linalg.norm(p - a) for a in anchors]
            if dist and min(dist) >= lo and dist[0] <= hi:
                return float(p[0]), float(p[1])
        raise RuntimeError(f"{self.task.name}: could not place {what} {lo}-{hi} m from the other objects")

    def reset(self, cell: tuple[int, int] | None = None, seed: int = 0, home_noise: float = 0.0) -> dict:
        """Place the main object at ``cell``'s centre with the trial yaw, or (cell None) at a
        seeded uniform placement; the other object and distractors are seeded too. The arm starts
        at the home pose, each joint offset by N(0, ``home_noise``) rad when ``home_noise`` > 0
        (demonstrations from varied start poses; evaluation starts at home)."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        ctl = self.cfg.control
        if cell is not None:
            if len(tuple(cell)) != 2:
                raise ValueError(f"cell: expected (row, col) or None, found {cell!r}")
            row, col = check_cell(*cell, grid=self.grid)
            x, y = cell_center(row, col, self.grid)
            yaw = trial_yaw(seed, row, col, self.grid)
            rng = np.random.default_rng([int(seed), row, col, 1])
        else:
            row = col = None
            rng = np.random.default_rng([int(seed)])
            (x0, x1), (y0, y1) = self.grid.x_range, self.grid.y_range
            x, y, yaw = rng.uniform(x0, x1), rng.uniform(y0, y1), rng.uniform(-np.pi, np.pi)
        t = self.task
        x, y, yaw = float(x), float(y), float(yaw)
        self.placement = {"cell": None if cell is None else [row, col], "seed": int(seed), "x": x, "y": y,
                          "yaw": yaw, "objects": {t.main_object: [x, y, yaw]}}
        self._place(t.main_object, x, y, yaw)
        anchors = [np.array([x, y])]
        if t.other_object:
            ox, oy = self._sample_near(rng, anchors, t.min_distance, t.max_distance, t.other_object)
            oyaw = float(rng.uniform(-np.pi, np.pi))
            self._place(t.other_object, ox, oy, oyaw)
            anchors.append(np.array([ox, oy]))
            self.placement["objects"][t.other_object] = [ox, oy, oyaw]
        for name, *_ in DISTRACTORS[: self.variation.num_distractors]:
            dx, dy = self._sample_near(rng, anchors, self.variation.distractor_min_distance, 10.0, name)
            dyaw = float(rng.uniform(-np.pi, np.pi))
            self._place(name, dx, dy, dyaw)
            anchors.append(np.array([dx, dy]))
            self.placement["objects"][name] = [dx, dy, dyaw]
        q0 = np.asarray(ctl.home_qpos, dtype=np.float64)
        if home_noise > 0:
            q0 = q0 + np.random.default_rng([int(seed), 7]).normal(0.0, home_noise, q0.shape)
            lo, hi = m.jnt_range[[m.joint(j).id for j in ARM_JOINTS]].T
            q0 = np.clip(q0, lo + 0.05, hi - 0.05)
        d.qpos[self.view.arm_qpos_adr] = q0
        d.ctrl[self._arm_act] = q0
        self._q_target = q0.copy()
        d.ctrl[self._grip_act] = 0.0
        mujoco.mj_forward(m, d)
        n_settle = int(round(self.cfg.physics.settle_s / m.opt.timestep))
        mujoco.mj_step(m, d, nstep=n_settle)
        d.time = 0.0
        self.latches = Latches()
        self.num_steps = 0
        self._expert = None
        self._was_reset = True
        return self.observation()

    # ------------------------------------------------------------------ stepping
    def step(self, action) -> dict:
        """One control step (1 / control_hz s) with ``action`` = 7 normalised joint velocities + gripper."""
        if not self._was_reset:
            raise RuntimeError(f"{self.task.name}: call reset() before step() (objects are not placed yet)")
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (8,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action: expected 8 finite values (7 joint velocities + gripper), found {a.shape} {a}")
        m, d, v = self.model, self.data, self.view
        ctl = self.cfg.control
        vel = ctl.command_to_velocity(a[:7])
        grip = float(np.clip(a[7], 0.0, 1.0))
        d.ctrl[self._grip_act] = ctl.gripper_ctrl_max * grip
        dv = vel * m.opt.timestep
        lead = ctl.max_target_lead
        adr = v.arm_qpos_adr
        has_button = self.task.main_object == "red_button"
        press_adr = m.jnt_qposadr[m.joint("red_button_press").id] if has_button else None
        target = self._q_target
        for _ in range(self._n_sub):
            q = d.qpos[adr]
            target = np.clip(target + dv, q - lead, q + lead)
            d.ctrl[self._arm_act] = target
            mujoco.mj_step(m, d)
            if has_button:
                self.latches.button_max_depth = max(self.latches.button_max_depth, float(-d.qpos[press_adr]))
        self._q_target = target
        if self.task.name == "push_cup" and not self.latches.cup_touched_bowl:
            self.latches.cup_touched_bowl = v.touching("red_cup", "red_bowl")
        self.num_steps += 1
        return self.observation()

    def success(self) -> bool:
        return bool(self.task.success(self.view, self.latches, self.success_cfg))

    # ------------------------------------------------------------------ observation
    @property
    def renderer(self) -> mujoco.Renderer:
        if self._renderer is None:
            S = self.cfg.camera.image_size
            self._renderer = mujoco.Renderer(self.model, S, S)
        return self._renderer

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """(exterior, wrist) uint8 S x S x 3 images of the current state."""
        r = self.renderer
        out = []
        for cam in (EXTERIOR_CAMERA, WRIST_CAMERA):
            r.update_scene(self.data, camera=cam)
            r.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            out.append(r.render().copy())
        return out[0], out[1]

    def observation(self) -> dict:
        v = self.view
        obs = {
            JOINT_KEY: v.joint_positions(),
            GRIPPER_KEY: np.array([v.gripper_position(self.cfg.control.gripper_joint_closed)]),
            PROMPT_KEY: self.instruction,
        }
        if self.render_images:
            obs[EXTERIOR_KEY], obs[WRIST_KEY] = self.render()
        return obs

    def commanded_joint_positions(self) -> np.ndarray:
        """The servo targets the commands have integrated to (rad) -- where the arm is heading."""
        return self._q_target.copy()

    def joint_velocities(self) -> np.ndarray:
        """Observed joint velocities (rad/s), as DROID's ``observation/robot_state/joint_velocities``."""
        return self.view.joint_velocities()

    @property
    def info(self) -> dict:
        """Object poses (x, y, z, yaw), the placement, step count and latched events."""
        v = self.view
        poses = {}
        for name in (*self.task.objects, *(n for n, *_ in DISTRACTORS[: self.variation.num_distractors])):
            p = v.pos(name)
            poses[name] = [float(p[0]), float(p[1]), float(p[2]), v.yaw(name)]
        return {
            "task": self.task.name, "variation": self.variation.name, "step": self.num_steps,
            "time_s": self.num_steps / self.cfg.control.control_hz, "placement": self.placement,
            "object_poses": poses, "pinch": v.pinch_pos().tolist(),
            "button_max_depth": self.latches.button_max_depth, "cup_touched_bowl": self.latches.cup_touched_bowl,
        }

    # ------------------------------------------------------------------ expert
    def expert_action(self) -> np.ndarray:
        """The scripted expert's next action (8) for the current state (a policy for harness checks)."""
        if self._expert is None:
            from robosteer_assets.sim.expert import make_expert

            self._expert = make_expert(self)
        return self._expert.act()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def run_episode(env: TabletopEnv, policy=None, max_steps: int | None = None, post_success_steps: int = 3,
                on_step=None, obs: dict | None = None, perturb=None) -> dict:
    """Roll out ``policy(obs) -> action`` (default: the env's expert) from the current state.

    Stops ``post_success_steps`` steps after the first success or at
    ``max_steps`` (default: the task's step limit). ``on_step(obs, action)`` sees
    each observation with the action taken from it. ``obs``: the current
    observation if the caller has it (saves a render). ``perturb(action) -> action``:
    what is executed instead of the policy's action (noise injection while recording:
    ``on_step`` still sees the policy's own action, the label). Returns a summary dict.
    """
    limit = max_steps or env.task.step_limit
    obs = env.observation() if obs is None else obs
    t0 = time.monotonic()
    first_success = None
    steps = 0
    while steps < limit:
        action = env.expert_action() if policy is None else np.asarray(policy(obs), dtype=np.float64)
        if on_step is not None:
            on_step(obs, action)
        obs = env.step(action if perturb is None else perturb(action))
        steps += 1
        if first_success is None and env.success():
            first_success = steps
        if first_success is not None and steps - first_success >= post_success_steps:
            break
    ok = env.success()
    return {"success": ok, "steps": steps, "first_success_step": first_success,
            "duration_s": time.monotonic() - t0}
