"""The stock ``openpi-client`` 0.1.2 (its own venv, numpy<2) against our server serving a tiny pi0.

``openpi_client_driver.py`` runs in ``.venv-openpi-client`` and uses ``WebsocketClientPolicy`` and
``ActionChunkBroker`` exactly as a DROID user does; this test asserts on the JSON it prints.
openpi-client 0.1.2 imports ``typing_extensions`` without declaring it as a dependency; when the
venv lacks it, the driver gets a copy of ours (a pure-Python single module) on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from robosteer_assets.evaluation.server import ServerConfig, run_in_thread

from ._support import NUM_STEPS, droid_request, make_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CLIENT_PYTHON = ROOT / ".venv-openpi-client" / "bin" / "python"
DRIVER = Path(__file__).with_name("openpi_client_driver.py")

pytestmark = pytest.mark.skipif(
    not CLIENT_PYTHON.exists(), reason=f"{CLIENT_PYTHON} not found: the openpi-client venv is made by scripts/install.sh")


def _driver_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    probe = subprocess.run([str(CLIENT_PYTHON), "-c", "import typing_extensions"], capture_output=True, env=env)
    if probe.returncode != 0:
        import typing_extensions

        shim = tmp_path / "shim"
        shim.mkdir()
        shutil.copy(typing_extensions.__file__, shim / "typing_extensions.py")
        env["PYTHONPATH"] = str(shim)
    return env


def test_stock_openpi_client_and_action_chunk_broker(tmp_path):
    from robosteer_assets.vla.policy import Policy

    ckpt = make_tiny_checkpoint(tmp_path)
    policy = Policy.from_checkpoint(ckpt, num_steps=NUM_STEPS, seed=0)
    reference = Policy.from_checkpoint(ckpt, num_steps=NUM_STEPS, seed=0)
    horizon = policy.cfg.action_horizon
    steps = horizon + 3  # two chunks through the broker
    with run_in_thread(policy, ServerConfig(host="127.0.0.1", port=0)) as handle:
        proc = subprocess.run([str(CLIENT_PYTHON), str(DRIVER), "127.0.0.1", str(handle.port), str(steps)],
                              capture_output=True, text=True, timeout=300, env=_driver_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    assert report["numpy"].startswith("1.")  # really the numpy<2 client
    assert report["metadata"] == json.loads(json.dumps(policy.metadata))
    first = report["first"]
    assert first["keys"] == ["actions", "policy_timing", "server_timing"]
    assert (first["type"], first["shape"], first["dtype"], first["finite"]) == ("ndarray", [horizon, 8], "<f8", True)
    assert first["server_timing"] == ["infer_ms"] and first["policy_timing"] == ["infer_ms"]
    # the server's first chunk is the in-process policy's first chunk (same seed), bit for bit
    np.testing.assert_array_equal(first["first_row"], reference.infer(droid_request(0))["actions"][0])

    broker = report["broker"]
    assert broker["server_calls"] == 2  # one call per horizon steps
    assert [s["shape"] for s in broker["steps"]] == [[8]] * steps
    assert all(s["row_of_chunk"] and s["timing_passed_through"] for s in broker["steps"])

    # a malformed request raises in the stock client with our one-line message; the connection is closed
    assert report["malformed"]["raised"] == "RuntimeError"
    assert report["malformed"]["message"] == (
        "Error in inference server:\ninvalid request: request: missing keys ['observation/joint_position']; "
        "expected ['observation/exterior_image_1_left', 'observation/wrist_image_left', "
        "'observation/joint_position', 'observation/gripper_position', 'prompt']")
    after = report["after_error_same_connection"]
    assert after["raised"] == "ConnectionClosedError" and "1011" in after["message"]
    assert report["new_connection_shape"] == [horizon, 8]
