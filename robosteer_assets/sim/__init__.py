"""Simulated DROID tabletop: MuJoCo Panda + Robotiq 2F-85, the paper's tasks,
evaluation grid, variations, scripted experts and a DROID-layout recorder.

Modules (one concept each):

* ``config``     -- typed settings: physics (0.002 s, implicitfast, elliptic, impratio 10),
  DROID action units at 6 Hz, cameras, table.
* ``scene``      -- ``build_model(objects, variation)``: MjSpec composition from menagerie.
* ``objects``    -- cube, bowl, mug, cup, marker, button, distractors (geometry dataclasses).
* ``variations`` -- ``none``, ``lighting``, ``form``, ``distractors``.
* ``grid``       -- the 5 x 8 grid over 0.5 m x 0.28 m: ``cell_center``, ``trial_yaw``.
* ``tasks``      -- ``TASKS``: instruction + physics-state success predicate per task.
* ``state``      -- ``SceneView``: poses, contacts, grasps, button depth.
* ``env``        -- ``TabletopEnv`` (reset / step / success / render / expert_action / info), ``run_episode``.
* ``expert``     -- mink differential-IK scripted experts.
* ``recorder``   -- ``record_demos(task, n, out_dir, seed, variation) -> list[Path]``.
* ``cli``        -- ``robosteer sim demos`` / ``robosteer sim render``.

MuJoCo picks its OpenGL backend at import time; offscreen rendering needs EGL
(or OSMesa), so ``MUJOCO_GL`` defaults to ``egl`` here before anything in this
package imports mujoco. Set it yourself to override.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
