"""Code location entry point (workspace.yaml: robosteer_assets.definitions:defs)."""

from robosteer_assets.defs.build import build_definitions

defs = build_definitions()
