"""Helpers for the fault catalogue (docs/faults.md).

A template data root is built once per test session: two tasks written with the
synthetic DROID writer (``pick_cube``: 4 episodes, ``open_drawer``: 3 episodes,
12 steps at 6 Hz, 32x32 frames) and both materialised through the real
``raw_episodes`` asset. Every test gets a private copy (``project``) with file
mtimes preserved (so the new-demos sensor sees settled episodes), breaks
something, drives a real entry point (asset, sensor, CLI, domain function) and
checks the message and what was kept.
"""

from __future__ import annotations

import hashlib
import os
import json
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from robosteer_assets.defs import ingest
from robosteer_assets.defs.resources import ProjectPaths
from robosteer_assets.droid.layout import find_episode_dirs, metadata_path
from robosteer_assets.droid.store import EpisodeStore, read_manifest

TASKS = {"pick_cube": 4, "open_drawer": 3}
T_STEPS = 12
IMAGE = 32
HZ = 6.0


def age_files(root: Path, seconds: float = 600.0) -> None:
    """Backdate every file and folder below ``root`` (and ``root``) so the sensor's
    settle time has passed (it counts folder mtimes too)."""
    past = time.time() - seconds
    for d, _, files in os.walk(root):
        for f in files:
            os.utime(os.path.join(d, f), (past, past))
        os.utime(d, (past, past))


def tree_digest(root: Path) -> dict[str, str]:
    """sha1 of every file below ``root`` (relative path -> digest)."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step-failure message (and its causes) of a run, joined."""
    parts = []
    for ev in result.all_events:
        if ev.event_type_value != "STEP_FAILURE":
            continue
        err = ev.step_failure_data.error
        while err is not None:
            parts.append(err.message)
            err = err.cause
    return "\n".join(parts)


def materialize(paths: ProjectPaths, instance, task: str, assets=None, min_episodes: int = 3, **ingest_kw):
    """Run the ingest assets of one task partition in process (never raises on a step failure)."""
    assets = assets or [ingest.raw_episodes]
    ops = {}
    if ingest.raw_episodes in assets:
        ops["raw_episodes"] = ingest.IngestConfig(min_episodes=min_episodes, read={"image_size": IMAGE}, **ingest_kw)
    return dg.materialize(
        assets, partition_key=task, instance=instance, resources={"paths": paths},
        run_config=dg.RunConfig(ops=ops), raise_on_error=False,
    )


@dataclass
class Project:
    """A private data root: ``demos/<task>/success/<uuid>/`` + ``store/<task>/``."""

    root: Path

    @property
    def paths(self) -> ProjectPaths:
        return ProjectPaths(data_root=str(self.root), settle_seconds=30.0)

    def episodes(self, task: str) -> list[Path]:
        return find_episode_dirs(self.paths.task_demos(task))

    def store_dir(self, task: str) -> Path:
        return self.paths.store(task)

    def store_digest(self, task: str) -> dict[str, str]:
        return tree_digest(self.store_dir(task))


def quarantine_of(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """episode path -> reason, from the ``raw_episodes`` materialization's quarantine table."""
    md = result.asset_materializations_for_node("raw_episodes")[0].metadata
    return {r.data["episode"]: r.data["reason"] for r in md["quarantine"].value.records}


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """``robosteer <argv>`` through the console entry point; returns (exit code, stdout)."""
    from robosteer_assets.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().out



def mp4_paths(episode_dir: Path) -> tuple[Path, Path]:
    """(exterior, wrist) MP4 of an episode, from its metadata JSON."""
    meta = json.loads(metadata_path(episode_dir).read_text())
    return episode_dir / meta["ext1_mp4_path"], episode_dir / meta["wrist_mp4_path"]


def assert_store_ok(project: Project, task: str, episodes: int) -> EpisodeStore:
    """The task's store opens, every chunk reads back, and it holds ``episodes`` episodes
    whose manifest rows are ``ok`` (quarantined rows are listed separately)."""
    store = EpisodeStore.open(project.store_dir(task))
    store.verify()
    assert store.num_episodes == episodes
    manifest = read_manifest(project.store_dir(task))
    assert manifest.filter(manifest["status"] == "ok").height == episodes
    assert set(manifest["ingest_id"].to_list()) == {store.ingest_id}
    return store


def assert_untouched(project: Project, task: str, before: dict[str, str]) -> None:
    """Another partition's store is byte-identical to ``before`` and still opens."""
    assert project.store_digest(task) == before, f"store of {task} changed"
    EpisodeStore.open(project.store_dir(task)).verify()
