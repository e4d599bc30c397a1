"""JAX process setup shared by the CLI, remote steps, benchmarks and the test suite: a persistent
compilation cache (compiles dominate CPU wall time; see jax_cpu_sizing.md §2.4)."""

from __future__ import annotations

import os
from pathlib import Path


def configure_jax(cache_dir: str | None = None) -> None:
    """Cache every compiled program in ``cache_dir`` (else ``$ROBOSTEER_JAX_CACHE``, else
    ``~/.cache/robosteer/jax``), whatever its compile time or size."""
    import jax

    cache = cache_dir or os.environ.get("ROBOSTEER_JAX_CACHE") or str(Path.home() / ".cache" / "robosteer" / "jax")
    Path(cache).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
