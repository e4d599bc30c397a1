"""Test-wide environment: CPU only, offscreen MuJoCo, offline menagerie, a shared
JAX compilation cache (compiles dominate CPU test time)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("MENAGERIE_ROOT", str((ROOT / ".." / "shared" / "menagerie").resolve()))
os.environ.setdefault("ROBOSTEER_JAX_CACHE", str(ROOT / ".cache" / "jax"))

from robosteer_assets.common.jaxsetup import configure_jax  # noqa: E402

configure_jax(os.environ["ROBOSTEER_JAX_CACHE"])
