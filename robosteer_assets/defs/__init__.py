"""The Dagster layer: thin wiring of domain functions into assets, checks,
resources, sensors and schedules. Nothing clever lives here."""
