"""Simulated DROID tabletop: MuJoCo Panda + Robotiq 2F-85, the paper's tasks,
evaluation grid, variations, scripted experts and a DROID-layout recorder.

MuJoCo picks its OpenGL backend at import time; offscreen rendering needs EGL
(or OSMesa), so ``MUJOCO_GL`` defaults to ``egl`` here before anything in this
package imports mujoco. Set it yourself to override.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
