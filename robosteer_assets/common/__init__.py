"""Small shared helpers: atomic writes, plots, progress logging. No dagster here."""
