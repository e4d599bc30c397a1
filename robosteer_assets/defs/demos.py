"""`task_demos`: each task's demonstrations as an external asset at the root of the graph.

Nothing materialises it; its *data version* is the fingerprint of the task's episode set
(``droid.scan``: episode names, file sizes and mtimes), recorded as an observation by
:func:`observe_task_demos`. ``raw_episodes`` depends on it, so when the demos change Dagster
itself marks the task's episode store stale ("has a new dependency data version", also in the
UI), and `robosteer run` re-ingests it and rebuilds what follows.
"""

from __future__ import annotations

import dagster as dg

# Dagster's tag for an observation's data version (what ``ObserveResult(data_version=...)`` sets).
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from robosteer_assets.defs.partitions import task_partitions

TASK_DEMOS = dg.AssetKey("task_demos")
NO_DEMOS = "no-demos"

task_demos = dg.AssetSpec(
    TASK_DEMOS,
    partitions_def=task_partitions,
    group_name="ingest",
    description="The task's demonstrations folder (DROID raw episodes). Observed, never materialised: "
    "its data version is the fingerprint of the episode set, so changed demos make raw_episodes stale.",
    kinds={"droid"},
)


def observe_task_demos(instance: dg.DagsterInstance, task: str, fingerprint: str) -> bool:
    """Record ``fingerprint`` as the data version of ``task_demos`` for partition ``task``, unless it
    already is the latest observed one. Returns True when an observation was written. A task without
    demos ("" fingerprint) is recorded as ``NO_DEMOS``."""
    fingerprint = fingerprint or NO_DEMOS
    latest = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=TASK_DEMOS, asset_partitions=[task]),
                                         limit=1)
    if latest.records:
        obs = latest.records[0].event_log_entry.asset_observation
        if obs is not None and (obs.tags or {}).get(DATA_VERSION_TAG) == fingerprint:
            return False
    instance.report_runless_asset_event(
        dg.AssetObservation(TASK_DEMOS, partition=task, tags={DATA_VERSION_TAG: fingerprint},
                            metadata={"demos_fingerprint": fingerprint}))
    return True
