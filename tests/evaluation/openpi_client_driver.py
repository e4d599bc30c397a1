"""Drive a policy server with the stock ``openpi-client`` 0.1.2 as a DROID user does; print JSON.

Run with the interpreter of ``.venv-openpi-client`` (numpy<2), not ours:
``python openpi_client_driver.py HOST PORT STEPS``. The last stdout line is one JSON object with
the metadata, the first response's keys / action shape / dtype / values, what ``ActionChunkBroker``
returned step by step, and what the client did on a malformed request.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from openpi_client import action_chunk_broker, websocket_client_policy


def droid_obs(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "observation/exterior_image_1_left": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/wrist_image_left": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/joint_position": rng.normal(size=7),
        "observation/gripper_position": np.array([0.3]),
        "prompt": "put the marker in the cup",
    }


class CountingPolicy:
    """Counts the calls that reach the websocket policy (the broker's cache misses)."""

    def __init__(self, policy):
        self.policy, self.calls, self.chunks = policy, 0, []

    def infer(self, obs):
        self.calls += 1
        out = self.policy.infer(obs)
        self.chunks.append(out["actions"])
        return out

    def reset(self):
        self.policy.reset()


def main(host: str, port: int, steps: int) -> dict:
    report: dict = {"numpy": np.__version__}
    policy = websocket_client_policy.WebsocketClientPolicy(host, port)
    report["metadata"] = policy.get_server_metadata()
    out = policy.infer(droid_obs(0))
    actions = out["actions"]
    report["first"] = {
        "keys": sorted(out),
        "type": type(actions).__name__,
        "shape": list(actions.shape),
        "dtype": actions.dtype.str,
        "finite": bool(np.all(np.isfinite(actions))),
        "first_row": actions[0].tolist(),
        "server_timing": sorted(out["server_timing"]),
        "policy_timing": sorted(out["policy_timing"]),
    }

    horizon = int(report["metadata"]["action_horizon"])
    counting = CountingPolicy(policy)
    broker = action_chunk_broker.ActionChunkBroker(counting, action_horizon=horizon)
    stepped = []
    for step in range(steps):
        res = broker.infer(droid_obs(step + 1))
        chunk = counting.chunks[-1]
        stepped.append({"shape": list(res["actions"].shape),
                        "row_of_chunk": bool(np.array_equal(res["actions"], chunk[step % horizon])),
                        "timing_passed_through": isinstance(res["server_timing"], dict)})
    report["broker"] = {"steps": stepped, "server_calls": counting.calls}

    bad = {k: v for k, v in droid_obs(0).items() if k != "observation/joint_position"}
    try:
        policy.infer(bad)
        report["malformed"] = {"raised": None}
    except Exception as exc:  # noqa: BLE001 - report whatever the stock client raises
        report["malformed"] = {"raised": type(exc).__name__, "message": str(exc)}
    try:
        policy.infer(droid_obs(0))
        report["after_error_same_connection"] = {"raised": None}
    except Exception as exc:  # noqa: BLE001
        report["after_error_same_connection"] = {"raised": type(exc).__name__, "message": str(exc)}

    again = websocket_client_policy.WebsocketClientPolicy(host, port)
    report["new_connection_shape"] = list(again.infer(droid_obs(5))["actions"].shape)
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
