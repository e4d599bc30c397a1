"""`robosteer` console script. Each domain package contributes its subcommands
through ``<package>/cli.py: register(subparsers)``; heavy imports happen inside
the handlers so `robosteer --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# (module, required) -- a module that does not exist yet is skipped.
_COMMAND_MODULES = [
    "robosteer_assets.droid.cli",  # validate
    "robosteer_assets.vla.cli",  # model info
    "robosteer_assets.sim.cli",  # sim demos / sim render
    "robosteer_assets.evaluation.cli",  # serve / eval sheet / eval ingest / sql
    "robosteer_assets.pipeline_cli",  # run (the main job on the embedded default)
    "robosteer_assets.embedded.cli",  # pretrain (the shipped base policy)
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robosteer", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    rc = args.handler(args)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
