from __future__ import annotations

import numpy as np
import pytest

from robosteer_assets.droid.keyframes import KeyframeConfig, keyframe_indices, nonidle_ranges, plot_keyframes
from robosteer_assets.droid.synthetic import make_recording

FAST = 1.0  # rad/s, above the 0.1 stop threshold


def _vel(T, small_steps=()):
    v = np.full((T, 7), FAST)
    for i in small_steps:
        v[i] = 0.05
    return v


def test_gripper_change_and_last_step():
    g = np.zeros(20)
    g[8:] = 1.0
    np.testing.assert_array_equal(keyframe_indices(g, _vel(20)), [8, 19])


def test_stops_respect_buffer_of_four():
    # still from step 5 to 14: stops at 5 and then every 5th step (buffer 4 in between)
    np.testing.assert_array_equal(keyframe_indices(np.zeros(20), _vel(20, range(5, 15))), [5, 10, 19])
    # a larger buffer spaces them further
    cfg = KeyframeConfig(stop_buffer=6)
    np.testing.assert_array_equal(keyframe_indices(np.zeros(20), _vel(20, range(5, 15)), cfg), [5, 12, 19])


def test_stop_needs_every_joint_slow():
    v = _vel(12, range(3, 6))
    v[3:6, 6] = 0.2  # one joint still moving
    np.testing.assert_array_equal(keyframe_indices(np.zeros(12), v), [11])


def test_no_stop_around_gripper_change():
    g = np.zeros(15)
    g[6:] = 1.0
    # slow at 5, 6, 7 but the gripper changes inside each window: only the change itself is a keyframe
    np.testing.assert_array_equal(keyframe_indices(g, _vel(15, [5, 6, 7])), [6, 14])


def test_adjacent_last_keyframes_drop_the_earlier():
    g = np.zeros(10)
    g[8:] = 1.0  # change at 8, last step 9 -> 8 dropped
    np.testing.assert_array_equal(keyframe_indices(g, _vel(10)), [9])


def test_negative_index_is_clamped():
    # RoboPrompt would wrap open[i-2] to the (closed) end of the episode at i = 1 and miss this stop
    g = np.array([0.0] * 7 + [1.0] * 3)
    np.testing.assert_array_equal(keyframe_indices(g, _vel(10, [1])), [1, 7, 9])


def test_continuous_gripper_threshold():
    g = np.array([0.1, 0.3, 0.45, 0.49, 0.51, 0.8, 0.8, 0.8, 0.8, 0.8])
    np.testing.assert_array_equal(keyframe_indices(g, _vel(10)), [4, 9])
    np.testing.assert_array_equal(keyframe_indices(g, _vel(10), KeyframeConfig(gripper_threshold=0.7)), [5, 9])


def test_stop_at_second_to_last_step_is_ignored():
    np.testing.assert_array_equal(keyframe_indices(np.zeros(10), _vel(10, [8])), [9])


def test_idle_filter_ranges_and_keyframes():
    rng = np.random.default_rng(0)
    cmd = np.zeros((40, 7))
    cmd[10:] = rng.normal(size=(30, 7))  # idle (constant) for 10 steps, then moving
    assert nonidle_ranges(cmd) == [(10, 30)]
    g = np.zeros(40)
    g[20:] = 1.0
    v = _vel(40, [3])
    np.testing.assert_array_equal(keyframe_indices(g, v), [3, 20, 39])
    filtered = keyframe_indices(g, v, KeyframeConfig(idle_filter=True), action_joint_velocity=cmd)
    np.testing.assert_array_equal(filtered, [20])
    with pytest.raises(ValueError, match="action_joint_velocity"):
        keyframe_indices(g, v, KeyframeConfig(idle_filter=True))


def test_bad_shapes():
    with pytest.raises(ValueError, match="equal T"):
        keyframe_indices(np.zeros(5), np.zeros((6, 7)))
    assert keyframe_indices(np.zeros(0), np.zeros((0, 7))).size == 0


def test_synthetic_episode_keyframes_and_plot():
    rec = make_recording(T=60, seed=0, image_size=16, pause_steps=12)
    k = keyframe_indices(rec.gripper_positions, rec.joint_velocities)
    close = int(np.argmax(rec.gripper_positions >= 0.5))
    assert close in k and k[-1] == 59 and len(k) >= 3
    png = plot_keyframes(rec.joint_velocities, k, rec.gripper_positions, control_hz=rec.control_hz)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_episode_keyframes_on_read_episode(episode):
    from robosteer_assets.droid.keyframes import episode_keyframes
    from robosteer_assets.droid.reader import ReadConfig, read_episode

    ep = read_episode(episode, ReadConfig(image_size=16, target_hz=None))
    k = episode_keyframes(ep)
    np.testing.assert_array_equal(k, keyframe_indices(ep.gripper, ep.joint_velocities))
    assert k[-1] == ep.length - 1
