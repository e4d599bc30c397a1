"""Case 15: malformed, oversized and wrong-typed requests to the policy server.

A real tiny pi0 checkpoint (``pi0_tiny``, fresh weights) is served by ``evaluation.server`` in a
thread. Each bad request is sent on its own connection: garbage bytes, a text frame instead of a
binary one, an ndarray map whose data does not match its shape, an object-dtype array, a message
over ``max_message_bytes``, and DROID requests with the image as float, the prompt as an int, a
6-long ``joint_position``, a NaN in the state, an image over the side limit.

What the user sees: one text frame with a single readable line naming the field and what was
expected (``invalid request: observation/joint_position: expected shape (7,), found (6,)``), then
the close code 1011 with openpi's reason; with the stock openpi-client that is
``RuntimeError("Error in inference server:\\n" + line)``. A message over the hard transport limit
(2 x ``max_message_bytes`` by default) is not read at all: close code 1009 with websockets' reason
naming the limit.

What is kept: the server keeps serving. A good request on a new connection gets a finite
(action_horizon, 8) chunk, and a client that stayed connected throughout is unaffected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from robosteer_assets.evaluation.client import PolicyClient, PolicyServerError
from robosteer_assets.evaluation.msgpack_numpy import packb
from robosteer_assets.evaluation.server import ERROR_CLOSE_REASON, ServerConfig, run_in_thread

PROMPT = "put the marker in the cup"
MAX_BYTES = 1_000_000  # a good 224x224 request is ~300 KB
HARD_BYTES = 4_000_000


def _request(seed: int = 0, size: tuple[int, int] = (224, 224), **overrides) -> dict:
    rng = np.random.default_rng(seed)
    req = {
        "observation/exterior_image_1_left": rng.integers(0, 256, (*size, 3), dtype=np.uint8),
        "observation/wrist_image_left": rng.integers(0, 256, (*size, 3), dtype=np.uint8),
        "observation/joint_position": rng.normal(size=7),
        "observation/gripper_position": np.array([0.3]),
        "prompt": PROMPT,
    }
    req.update(overrides)
    return req


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from robosteer_assets.vla import model
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.normalize import compute_norm_stats
    from robosteer_assets.vla.policy import Policy
    from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

    tmp: Path = tmp_path_factory.mktemp("c15")
    cfg = get_config("pi0_tiny")
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(64, 8)), "actions": rng.normal(size=(64, 8))})
    tok = train_tiny_tokenizer([PROMPT, "open the drawer"], tmp / "tok.model", cfg.vocab_size)
    ckpt = save_checkpoint(tmp / "ckpt", cfg, model.init_params(cfg, seed=1), stats, tokenizer_path=tok)
    policy = Policy.from_checkpoint(ckpt, num_steps=3)
    config = ServerConfig(host="127.0.0.1", port=0, max_message_bytes=MAX_BYTES, hard_max_message_bytes=HARD_BYTES)
    with run_in_thread(policy, config) as handle:
        with PolicyClient("127.0.0.1", handle.port, timeout=60) as bystander:
            assert bystander.infer(_request())["actions"].shape == (cfg.action_horizon, 8)
            yield handle.port, cfg, bystander


def _exchange(port: int, frame: bytes | str) -> tuple[str | bytes | None, int | None, str | None]:
    """Send one raw frame after the metadata frame: (reply, close code, close reason)."""
    with connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None, open_timeout=30) as ws:
        ws.recv(timeout=30)  # metadata
        ws.send(frame)
        reply = None
        try:
            reply = ws.recv(timeout=30)
            ws.recv(timeout=30)
        except ConnectionClosed as exc:
            return reply, exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else None
    return reply, None, None


def _array_map(dtype: str, shape: list, data: bytes) -> dict:
    return {b"__ndarray__": True, b"data": data, b"dtype": dtype, b"shape": shape}


CASES = {
    "garbage-bytes": (b"\x93\xc1\xff\x00 not msgpack", "invalid request: message: not valid msgpack"),
    "text-frame": ('{"prompt": "put the marker in the cup"}',
                   "invalid request: request: expected a binary frame (msgpack-numpy), found a text frame"),
    "truncated-array": (packb(_request(**{"observation/joint_position": _array_map("<f8", [7], b"\x00" * 40)})),
                        "invalid request: ndarray data: 40 bytes do not match shape (7,) x <f8 (56 bytes expected)"),
    "object-array": (packb(_request(**{"observation/joint_position": _array_map("|O", [7], b"\x00" * 56)})),
                     "invalid request: ndarray dtype: '|O' (kind 'O') is refused"),
    "oversized": (packb(_request(size=(448, 448))),
                  "invalid request: request: message of "),
    "image-as-float": (packb(_request(**{"observation/exterior_image_1_left": np.random.default_rng(1).random(
        (224, 224, 3), np.float32)})), "invalid request: observation/exterior_image_1_left: expected uint8 [H, W, 3], "
                                       "found dtype float32"),
    "prompt-as-int": (packb(_request(prompt=42)), "invalid request: prompt: expected str or bytes, found int"),
    "joint-position-6": (packb(_request(**{"observation/joint_position": np.zeros(6)})),
                         "invalid request: observation/joint_position: expected shape (7,), found (6,)"),
    "nan-state": (packb(_request(**{"observation/gripper_position": np.array([np.nan])})),
                  "invalid request: observation/gripper_position: expected finite values, found [nan]"),
    "image-too-large": (packb(_request(**{"observation/wrist_image_left": np.zeros((2100, 8, 3), np.uint8)})),
                        "invalid request: observation/wrist_image_left: image 2100x8 exceeds the limit of 2048"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_request_gets_an_error_frame_and_1011_and_the_server_keeps_serving(served, case):
    port, cfg, bystander = served
    frame, expected = CASES[case]
    reply, code, reason = _exchange(port, frame)
    assert isinstance(reply, str) and reply.startswith(expected), reply
    assert "\n" not in reply and "Traceback" not in reply  # one readable line
    assert (code, reason) == (1011, ERROR_CLOSE_REASON)
    if case == "oversized":
        assert reply == (f"invalid request: request: message of {len(frame)} bytes exceeds the server limit of "
                         f"{MAX_BYTES} bytes (max_message_bytes)")
        assert MAX_BYTES < len(frame) < HARD_BYTES

    with PolicyClient("127.0.0.1", port, timeout=60) as fresh:  # a new connection is served
        actions = fresh.infer(_request(seed=2))["actions"]
    assert actions.shape == (cfg.action_horizon, 8) and np.all(np.isfinite(actions))
    assert np.all(np.isfinite(bystander.infer(_request(seed=3))["actions"]))  # and the open one too


def test_message_over_the_hard_limit_is_not_read(served):
    port, cfg, bystander = served
    with PolicyClient("127.0.0.1", port, timeout=60) as client:
        with pytest.raises(PolicyServerError) as e:
            client.infer(_request(prompt="x" * (HARD_BYTES + 1)))
    assert e.value.close_code == 1009
    assert f"exceeds limit of {HARD_BYTES} bytes" in str(e.value)
    with PolicyClient("127.0.0.1", port, timeout=60) as fresh:
        assert fresh.infer(_request())["actions"].shape == (cfg.action_horizon, 8)
    assert bystander.infer(_request())["actions"].shape == (cfg.action_horizon, 8)
