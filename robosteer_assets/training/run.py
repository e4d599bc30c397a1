"""``python -m robosteer_assets.training.run --config JSON`` — one finetuning run as a plain process.

``JSON`` is a JSON object or the path of a JSON file with the ``run_step`` spec:
``{"method": "steering"|"full_lora"|"steering_full", "base_checkpoint": DIR, "store": DIR (or list),
"selected_heads": FILE, "out": DIR, ...TrainConfig fields (flat or nested)}``. Prints the summary as
one JSON line. Killed and restarted with the same config, it resumes from its last saved step.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path


def _load(text: str) -> dict:
    try:
        spec = json.loads(Path(text).read_text()) if not text.lstrip().startswith("{") else json.loads(text)
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"--config: expected a JSON object or a JSON file path ({e})") from None
    if not isinstance(spec, dict):
        raise SystemExit(f"--config: expected a JSON object, found {type(spec).__name__}")
    return spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON object or JSON file (run_step spec)")
    args = parser.parse_args(argv)
    spec = _load(args.config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    cache = os.environ.get("ROBOSTEER_JAX_CACHE")
    if cache:
        import jax

        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    from robosteer_assets.common.cancel import install_signal_handlers
    from robosteer_assets.training.trainer import run_step

    install_signal_handlers()
    summary = run_step(spec, logging.getLogger("robosteer.training.run"))
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
