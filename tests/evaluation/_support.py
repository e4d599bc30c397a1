"""Helpers for the policy-server tests: a tiny pi0 checkpoint, DROID requests, fake policies and a
raw websocket exchange (to send frames our client never sends)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from robosteer_assets.evaluation.msgpack_numpy import packb, unpackb

PROMPT = "put the marker in the cup"
NUM_STEPS = 3  # Euler steps for the served tiny model (fast; the value does not matter to the protocol)


def make_tiny_checkpoint(tmp: Path, name: str = "pi0_tiny") -> Path:
    """Save a freshly initialised ``name`` checkpoint with norm stats and a tiny tokenizer."""
    from robosteer_assets.vla import model
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.normalize import compute_norm_stats
    from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

    cfg = get_config(name)
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(64, 8)), "actions": rng.normal(size=(64, 8)) * 0.2 + 1})
    tok = train_tiny_tokenizer([PROMPT, "open the drawer"], tmp / "tok.model", cfg.vocab_size)
    return save_checkpoint(tmp / "ckpt", cfg, model.init_params(cfg, seed=1), stats, tokenizer_path=tok)


def droid_request(seed: int = 0, size: tuple[int, int] = (224, 224), **overrides) -> dict:
    """A valid DROID request (openpi_facts §4.1) with ``overrides`` applied."""
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


class FakePolicy:
    """Fast policy returning a (4, 8) chunk of the request's ``value`` (default 0); prompt ``"slow"``
    sleeps ``slow_s`` first, ``"boom"`` raises. Records the largest number of concurrent calls."""

    def __init__(self, thread_safe: bool = True, slow_s: float = 1.5, horizon: int = 4):
        self.thread_safe = thread_safe
        self.slow_s = slow_s
        self.horizon = horizon
        self.metadata = {"model": "fake", "action_horizon": horizon, "reset_pose": [0.0, 1.0]}
        self.max_concurrent = 0
        self._running = 0
        self._count_lock = threading.Lock()

    def infer(self, obs: dict) -> dict:
        with self._count_lock:
            self._running += 1
            self.max_concurrent = max(self.max_concurrent, self._running)
        try:
            if obs.get("prompt") == "slow":
                time.sleep(self.slow_s)
            if obs.get("prompt") == "boom":
                raise RuntimeError("fake policy exploded on purpose")
            value = float(obs.get("value", 0.0))
            return {"actions": np.full((self.horizon, 8), value), "policy_timing": {"infer_ms": 0.01}}
        finally:
            with self._count_lock:
                self._running -= 1


@dataclass
class Exchange:
    """What a raw client saw: the metadata frame, the reply frame (bytes or str) and the close."""

    metadata: dict
    reply: bytes | str | None
    close_code: int | None
    close_reason: str | None


def raw_exchange(port: int, frame: bytes | str, timeout: float = 30.0) -> Exchange:
    """Connect, read the metadata frame, send ``frame`` as is, read the reply and, after a text
    reply, the server's close frame."""
    with connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None, open_timeout=timeout) as ws:
        first = ws.recv(timeout=timeout)
        assert isinstance(first, bytes), f"first frame should be binary metadata, got {type(first).__name__}"
        metadata = unpackb(first)
        ws.send(frame)
        reply: bytes | str | None = None
        try:
            reply = ws.recv(timeout=timeout)
            if isinstance(reply, str):
                ws.recv(timeout=timeout)  # the server closes right after its error frame
        except ConnectionClosed as exc:
            return Exchange(metadata, reply, exc.rcvd.code if exc.rcvd else None,
                            exc.rcvd.reason if exc.rcvd else None)
        return Exchange(metadata, reply, None, None)


def send_obs(port: int, obs: dict) -> Exchange:
    """``raw_exchange`` of a packed observation."""
    return raw_exchange(port, packb(obs))
