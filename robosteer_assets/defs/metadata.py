"""Small converters from domain results to Dagster metadata values."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from robosteer_assets.common.plots import png_markdown


def md_image(png: bytes, alt: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(png_markdown(png, alt))


def table(rows: list[dict], columns: list[str] | None = None) -> dg.MetadataValue:
    """A Dagster table from a list of dicts (column types inferred from the first row)."""
    columns = columns or (list(rows[0]) if rows else [])

    def kind(v):
        return "int" if isinstance(v, int) and not isinstance(v, bool) else "float" if isinstance(v, float) else (
            "bool" if isinstance(v, bool) else "string")

    first = rows[0] if rows else {}
    schema = dg.TableSchema(columns=[dg.TableColumn(c, kind(first.get(c, ""))) for c in columns])
    records = [dg.TableRecord({c: (r.get(c) if isinstance(r.get(c), (int, float, bool)) else str(r.get(c)))
                               for c in columns}) for r in rows]
    return dg.MetadataValue.table(records=records, schema=schema)


def path(p: str | Path) -> dg.MetadataValue:
    return dg.MetadataValue.path(str(p))
