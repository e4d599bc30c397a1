"""Case 3: an MP4 with fewer or more frames than the episode has steps.

DROID's known quirk (one frame fewer than h5 steps, droid_facts §5) is repaired
by truncating the episode; any other mismatch quarantines the episode.
"""

import numpy as np

from robosteer_assets.droid.writer import write_mp4

from ._support import HZ, IMAGE, T_STEPS, assert_store_ok, assert_untouched, materialize, mp4_paths, quarantine_of


def _reencode(path, n_frames):
    frames = np.random.default_rng(n_frames).integers(0, 255, size=(n_frames, IMAGE, IMAGE, 3), dtype=np.uint8)
    write_mp4(path, frames, HZ)


def test_frame_count_mismatch_is_quarantined_one_short_is_repaired(project, instance):
    other = project.store_digest("open_drawer")
    eps = project.episodes("pick_cube")
    fewer, _ = mp4_paths(eps[0])
    _, more = mp4_paths(eps[1])
    one_short, _ = mp4_paths(eps[2])
    _reencode(fewer, T_STEPS - 3)
    _reencode(more, T_STEPS + 2)
    _reencode(one_short, T_STEPS - 1)

    res = materialize(project.paths, instance, "pick_cube", min_episodes=2)
    assert res.success
    q = quarantine_of(res)
    assert set(q) == {str(eps[0]), str(eps[1])}
    assert f"FrameCountError: {fewer} [frames]: expected {T_STEPS} frames" in q[str(eps[0])]
    assert f"found {T_STEPS - 3} frames" in q[str(eps[0])]
    assert f"FrameCountError: {more} [frames]" in q[str(eps[1])] and f"found {T_STEPS + 2} frames" in q[str(eps[1])]
    store = assert_store_ok(project, "pick_cube", episodes=2)
    lengths = {e["path"]: e["length"] for e in store.episodes}
    assert lengths == {str(eps[2]): T_STEPS - 1, str(eps[3]): T_STEPS}
    assert_untouched(project, "open_drawer", other)
