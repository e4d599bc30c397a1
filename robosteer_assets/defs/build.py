"""Assemble the Definitions object from the per-group modules."""

from __future__ import annotations

import dagster as dg


def build_definitions() -> dg.Definitions:
    from robosteer_assets.defs import ingest

    modules = [ingest]
    return dg.Definitions(
        assets=dg.load_assets_from_modules(modules),
        asset_checks=dg.load_asset_checks_from_modules(modules),
    )
