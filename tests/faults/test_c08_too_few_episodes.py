"""Case 8: a task with fewer valid episodes than the configured minimum fails
loudly; the last materialised store is kept unchanged."""

from robosteer_assets.defs import ingest
from robosteer_assets.droid.layout import TRAJECTORY_FILE

from ._support import TASKS, assert_store_ok, assert_untouched, failure_text, materialize, run_cli


def test_too_few_valid_episodes_fails_and_keeps_previous_store(project, instance, capsys):
    task = "open_drawer"
    other = project.store_digest("pick_cube")
    previous = project.store_digest(task)
    eps = project.episodes(task)
    for ep in eps[:2]:
        (ep / TRAJECTORY_FILE).write_bytes(b"\x89HDF\r\n")  # two of three episodes unreadable
    need = TASKS[task]

    rc, out = run_cli(["validate", project.paths.task_demos(task), "--min-episodes", need, "--image-size", 32], capsys)
    assert rc == 1
    assert (f"INVALID {project.paths.task_demos(task)}: TooFewEpisodesError: expected at least {need} valid "
            f"episodes (--min-episodes), found 1 of 3") in out

    res = materialize(project.paths, instance, task, assets=[ingest.raw_episodes, ingest.keyframes], min_episodes=need)
    assert not res.success
    msg = failure_text(res)
    assert f"{project.paths.task_demos(task)}: expected at least {need} valid episodes (min_episodes), found 1" in msg
    for ep in eps[:2]:
        assert f"{ep}: CorruptFileError: {ep / TRAJECTORY_FILE}" in msg  # each quarantined episode with its reason
    assert not res.asset_materializations_for_node("raw_episodes")
    succeeded = {e.step_key for e in res.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert "keyframes" not in succeeded  # downstream did not run on the failed ingest
    assert project.store_digest(task) == previous  # the previous store, byte for byte
    assert_store_ok(project, task, episodes=need)
    assert_untouched(project, "pick_cube", other)
