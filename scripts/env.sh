# Source me: environment for running robosteer from the repo root.
export MUJOCO_GL="${MUJOCO_GL:-egl}"
if [ -z "${MENAGERIE_ROOT:-}" ] && [ -d "$(pwd)/../shared/menagerie" ]; then
  export MENAGERIE_ROOT="$(cd "$(pwd)/../shared/menagerie" && pwd)"
fi
export DAGSTER_HOME="${DAGSTER_HOME:-$(pwd)/dagster_home}"
export ROBOSTEER_JAX_CACHE="${ROBOSTEER_JAX_CACHE:-$(pwd)/.cache/jax}"
