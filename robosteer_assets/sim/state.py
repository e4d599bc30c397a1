"""Read-only physics-state queries the task predicates and experts use.

``SceneView`` wraps a compiled model + data and answers questions in world
coordinates: object poses, contacts between objects and the gripper fingers,
the button plunger depth. The table top is at z = 0.
"""

from __future__ import annotations

from functools import cached_property

import mujoco
import numpy as np

from robosteer_assets.sim.scene import ARM_JOINTS, GRIPPER_DRIVER_JOINTS, PINCH_SITE


class SceneView:
    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData):
        self.m, self.d = model, data

    # ---- bodies -------------------------------------------------------------------
    def has(self, body: str) -> bool:
        return mujoco.mj_name2id(self.m, mujoco.mjtObj.mjOBJ_BODY, body) >= 0

    def body_id(self, body: str) -> int:
        i = mujoco.mj_name2id(self.m, mujoco.mjtObj.mjOBJ_BODY, body)
        if i < 0:
            raise KeyError(f"scene: no body named {body!r} in this task's scene")
        return i

    def pos(self, body: str) -> np.ndarray:
        return self.d.xpos[self.body_id(body)].copy()

    def xmat(self, body: str) -> np.ndarray:
        return self.d.xmat[self.body_id(body)].reshape(3, 3).copy()

    def yaw(self, body: str) -> float:
        R = self.xmat(body)
        return float(np.arctan2(R[1, 0], R[0, 0]))

    def up_cos(self, body: str) -> float:
        """cos of the angle between the body's z axis and the world's (1 = upright)."""
        return float(self.xmat(body)[2, 2])

    def geom_size(self, geom: str) -> np.ndarray:
        return self.m.geom_size[self.m.geom(geom).id].copy()

    def geom_type(self, geom: str) -> int:
        return int(self.m.geom_type[self.m.geom(geom).id])

    # ---- robot ----------------------------------------------------------------------
    @cached_property
    def arm_qpos_adr(self) -> np.ndarray:
        return np.array([self.m.jnt_qposadr[self.m.joint(j).id] for j in ARM_JOINTS])

    @cached_property
    def arm_dof_adr(self) -> np.ndarray:
        return np.array([self.m.jnt_dofadr[self.m.joint(j).id] for j in ARM_JOINTS])

    @cached_property
    def driver_qpos_adr(self) -> np.ndarray:
        return np.array([self.m.jnt_qposadr[self.m.joint(j).id] for j in GRIPPER_DRIVER_JOINTS])

    def joint_positions(self) -> np.ndarray:
        return self.d.qpos[self.arm_qpos_adr].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.d.qvel[self.arm_dof_adr].copy()

    def gripper_position(self, closed_angle: float = 0.8) -> float:
        """Observed closure, DROID convention: 0 open .. 1 closed."""
        return float(np.clip(self.d.qpos[self.driver_qpos_adr].mean() / closed_angle, 0.0, 1.0))

    def pinch_pos(self) -> np.ndarray:
        return self.d.site(PINCH_SITE).xpos.copy()

    def pinch_xmat(self) -> np.ndarray:
        return self.d.site(PINCH_SITE).xmat.reshape(3, 3).copy()

    # ---- contacts ---------------------------------------------------------------------
    @cached_property
    def _body_names(self) -> list[str]:
        return [self.m.body(i).name for i in range(self.m.nbody)]

    def _bodies_with_prefix(self, prefix: str) -> set[int]:
        return {i for i, n in enumerate(self._body_names) if n == prefix or n.startswith(prefix + "_")}

    @cached_property
    def _finger_bodies(self) -> tuple[set[int], set[int]]:
        right = {i for i, n in enumerate(self._body_names) if n.startswith("panda/gripper/right_")}
        left = {i for i, n in enumerate(self._body_names) if n.startswith("panda/gripper/left_")}
        return right, left

    @cached_property
    def _gripper_bodies(self) -> set[int]:
        return {i for i, n in enumerate(self._body_names) if n.startswith("panda/gripper/")}

    def _contact_body_pairs(self) -> list[tuple[int, int]]:
        n = self.d.ncon
        if n == 0:
            return []
        g = np.asarray(self.d.contact.geom[:n])
        gb = self.m.geom_bodyid
        return list(zip(gb[g[:, 0]].tolist(), gb[g[:, 1]].tolist()))

    def touching(self, a: str, b: str) -> bool:
        """Any contact between object ``a`` and object ``b`` (bodies named a / a_*)."""
        A, B = self._bodies_with_prefix(a), self._bodies_with_prefix(b)
        return any((x in A and y in B) or (x in B and y in A) for x, y in self._contact_body_pairs())

    def touching_gripper(self, obj: str) -> bool:
        A, G = self._bodies_with_prefix(obj), self._gripper_bodies
        return any((x in A and y in G) or (x in G and y in A) for x, y in self._contact_body_pairs())

    def grasped(self, obj: str) -> bool:
        """Both fingers (right and left linkage) touch ``obj``."""
        A = self._bodies_with_prefix(obj)
        right, left = self._finger_bodies
        r = l_ = False
        for x, y in self._contact_body_pairs():
            other = y if x in A else x if y in A else None
            if other is None:
                continue
            r |= other in right
            l_ |= other in left
        return r and l_

    # ---- button -------------------------------------------------------------------------
    def button_depth(self, name: str = "red_button") -> float:
        """How far the plunger is pressed (m, >= 0)."""
        return float(-self.d.qpos[self.m.jnt_qposadr[self.m.joint(f"{name}_press").id]])
