"""The policy server (openpi wire protocol) and our clients, with a fake policy and a served tiny pi0."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from robosteer_assets.evaluation.client import LocalPolicyClient, PolicyClient, PolicyServerError
from robosteer_assets.evaluation.msgpack_numpy import packb, unpackb
from robosteer_assets.evaluation.server import ERROR_CLOSE_REASON, ServerConfig, run_in_thread

from ._support import NUM_STEPS, FakePolicy, droid_request, make_tiny_checkpoint, raw_exchange, send_obs

LOCAL = dict(host="127.0.0.1", port=0)


@pytest.fixture(scope="module")
def fake():
    policy = FakePolicy(thread_safe=True)
    with run_in_thread(policy, ServerConfig(**LOCAL, max_message_bytes=10_000)) as handle:
        yield policy, handle.port


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from robosteer_assets.vla.policy import Policy

    ckpt = make_tiny_checkpoint(tmp_path_factory.mktemp("served"))
    policy = Policy.from_checkpoint(ckpt, num_steps=NUM_STEPS)
    with run_in_thread(policy, ServerConfig(**LOCAL)) as handle:
        yield ckpt, policy, handle.port


# ----------------------------------------------------------------------------------- fake policy


def test_metadata_frame_then_responses_with_server_timing(fake):
    policy, port = fake
    with PolicyClient("127.0.0.1", port, timeout=10) as client:
        assert client.get_server_metadata() == policy.metadata
        first = client.infer({"value": 2.0})
        second = client.infer({"value": 3.0})
    np.testing.assert_array_equal(first["actions"], np.full((4, 8), 2.0))
    np.testing.assert_array_equal(second["actions"], np.full((4, 8), 3.0))
    assert first["policy_timing"] == {"infer_ms": 0.01}
    assert set(first["server_timing"]) == {"infer_ms"}  # no previous request on this connection yet
    assert set(second["server_timing"]) == {"infer_ms", "prev_total_ms"}
    assert 0 < second["server_timing"]["infer_ms"] and first["server_timing"]["infer_ms"] > 0
    assert second["server_timing"]["prev_total_ms"] >= first["server_timing"]["infer_ms"]
    # the metadata frame is one binary msgpack frame, sent before any request
    ex = send_obs(port, {"value": 1.0})
    assert ex.metadata == policy.metadata and isinstance(ex.reply, bytes) and ex.close_code is None
    np.testing.assert_array_equal(unpackb(ex.reply)["actions"], np.ones((4, 8)))


def test_errors_give_a_text_frame_then_1011_and_the_server_keeps_serving(fake):
    _, port = fake
    cases = [
        (b"\xc1\x00garbage", "invalid request: message: not valid msgpack (FormatError"),
        ("a text frame", "invalid request: request: expected a binary frame (msgpack-numpy), found a text frame"),
        (packb([1, 2, 3]), "invalid request: request: expected a dict of observations, found list"),
        (packb({"pad": b"x" * 12_000}), "invalid request: request: message of 12"),  # over max_message_bytes
        (packb({"prompt": "boom"}), "RuntimeError: fake policy exploded on purpose"),  # traceback of infer
    ]
    for frame, expected in cases:
        ex = raw_exchange(port, frame)
        assert isinstance(ex.reply, str) and expected in ex.reply, (expected, ex.reply)
        assert (ex.close_code, ex.close_reason) == (1011, ERROR_CLOSE_REASON)
    assert "exceeds the server limit of 10000 bytes (max_message_bytes)" in raw_exchange(
        port, packb({"pad": b"x" * 12_000})).reply
    assert raw_exchange(port, packb({"prompt": "boom"})).reply.startswith("Traceback (most recent call last):")
    with PolicyClient("127.0.0.1", port, timeout=10) as client:  # and a new connection is served
        np.testing.assert_array_equal(client.infer({"value": 5.0})["actions"], np.full((4, 8), 5.0))


def test_message_over_the_hard_limit_is_refused_by_websockets(fake):
    _, port = fake
    with PolicyClient("127.0.0.1", port, timeout=10) as client:
        with pytest.raises(PolicyServerError, match=r"code 1009: frame with \d+ bytes exceeds limit of 20000 bytes"):
            client.infer({"pad": b"x" * 30_000})  # over 2 x max_message_bytes: never read by the server
    with PolicyClient("127.0.0.1", port, timeout=10) as client:
        assert client.infer({})["actions"].shape == (4, 8)


def test_client_raises_the_servers_message(fake):
    _, port = fake
    client = PolicyClient("127.0.0.1", port, timeout=10)
    with pytest.raises(PolicyServerError) as e:
        client.infer({"prompt": "boom"})
    assert "fake policy exploded on purpose" in str(e.value) and e.value.server_message.startswith("Traceback")
    assert (e.value.close_code, e.value.close_reason) == (1011, ERROR_CLOSE_REASON)
    with pytest.raises(PolicyServerError, match=r"connection closed"):
        client.infer({})  # the server closed this connection
    client.close()


def test_slow_request_does_not_block_a_second_client(fake):
    policy, port = fake
    done: dict[str, float] = {}

    def slow_client() -> None:
        with PolicyClient("127.0.0.1", port, timeout=30) as c:
            c.infer({"prompt": "slow"})
            done["slow"] = time.monotonic()

    t = threading.Thread(target=slow_client)
    start = time.monotonic()
    t.start()
    time.sleep(0.3)  # the slow request is in flight
    with PolicyClient("127.0.0.1", port, timeout=30) as c:  # handshake + metadata while it runs
        c.infer({"value": 1.0})
        done["fast"] = time.monotonic()
    t.join(30)
    assert done["fast"] < done["slow"], done  # answered while the slow request was still running
    assert done["slow"] - start >= policy.slow_s
    assert policy.max_concurrent == 2  # thread_safe: the two infers overlapped


def test_policy_without_thread_safe_is_serialised_but_handshakes_are_not_blocked():
    policy = FakePolicy(thread_safe=False, slow_s=1.0)
    with run_in_thread(policy, ServerConfig(**LOCAL)) as handle:
        done: dict[str, float] = {}

        def client(prompt: str, key: str) -> None:
            with PolicyClient("127.0.0.1", handle.port, timeout=30) as c:
                c.infer({"prompt": prompt})
                done[key] = time.monotonic()

        start = time.monotonic()
        threads = [threading.Thread(target=client, args=("slow", f"slow{i}")) for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        # while inference runs: /healthz and a new connection's metadata frame are answered at once
        with urllib.request.urlopen(f"http://127.0.0.1:{handle.port}/healthz", timeout=5) as r:
            assert r.read() == b"OK\n"
        with PolicyClient("127.0.0.1", handle.port, timeout=30) as c:
            assert c.get_server_metadata() == policy.metadata
        assert not done  # ... before the first inference finished
        for t in threads:
            t.join(30)
        assert policy.max_concurrent == 1  # never two calls into the policy at once
        assert max(done.values()) - start >= 2 * policy.slow_s


def test_response_arrays_must_lead_with_the_chunk():
    class BadPolicy(FakePolicy):
        def infer(self, obs):
            return {"actions": np.zeros((4, 8)), "debug": {"noise": np.zeros((3, 8))}}

    with run_in_thread(BadPolicy(), ServerConfig(**LOCAL)) as handle:
        ex = send_obs(handle.port, {})
    assert "policy response debug/noise: shape (3, 8) does not have the action chunk (4)" in ex.reply
    assert ex.close_code == 1011


def test_local_client_behaves_like_the_server(fake):
    policy, port = fake
    local = LocalPolicyClient(FakePolicy())
    assert local.get_server_metadata() == policy.metadata
    first, second = local.infer({"value": 4.0}), local.infer({"value": 4.0})
    with PolicyClient("127.0.0.1", port, timeout=10) as remote:
        wire = remote.infer({"value": 4.0})
    np.testing.assert_array_equal(first["actions"], wire["actions"])
    assert set(first) == set(wire) == {"actions", "policy_timing", "server_timing"}
    assert set(second["server_timing"]) == {"infer_ms", "prev_total_ms"}
    assert not first["actions"].flags.writeable  # it went through unpackb
    with pytest.raises(PolicyServerError) as e:
        local.infer([1, 2])
    remote_text = raw_exchange(port, packb([1, 2])).reply
    assert str(e.value) == remote_text == "invalid request: request: expected a dict of observations, found list"
    assert e.value.close_code == 1011
    with pytest.raises(PolicyServerError, match="the client is closed"):
        local.infer({})


def test_server_config_validation_and_port_in_use(fake):
    with pytest.raises(ValueError, match=r"ServerConfig.port: expected an int in \[0, 65535\]"):
        ServerConfig(port=70000)
    with pytest.raises(ValueError, match=r"ServerConfig.workers: expected a positive int, found 0"):
        ServerConfig(workers=0)
    with pytest.raises(ValueError, match=r"ServerConfig.max_message_bytes: expected a positive int"):
        ServerConfig(max_message_bytes=-1)
    with pytest.raises(ValueError, match=r"ServerConfig.hard_max_message_bytes: expected None or an int >= "):
        ServerConfig(max_message_bytes=100, hard_max_message_bytes=10)
    _, port = fake
    with pytest.raises(OSError, match=r"address already in use"):
        run_in_thread(FakePolicy(), ServerConfig(host="127.0.0.1", port=port))


def test_stop_closes_the_listener():
    handle = run_in_thread(FakePolicy(), ServerConfig(**LOCAL))
    port = handle.port
    with PolicyClient("127.0.0.1", port, timeout=10) as c:
        assert c.infer({})["actions"].shape == (4, 8)
    handle.stop()
    with pytest.raises(ConnectionError, match=rf"cannot connect to the policy server at ws://127.0.0.1:{port}"):
        PolicyClient("127.0.0.1", port, timeout=5)
    with socket.socket() as s:  # nothing listens there any more (Linux refuses this bind next to a listener)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


# ------------------------------------------------------------------------------ served tiny pi0


def test_tiny_model_metadata_actions_and_healthz(tiny):
    ckpt, policy, port = tiny
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        assert (r.status, r.read()) == (200, b"OK\n")
    with pytest.raises(urllib.error.HTTPError) as e:  # a plain HTTP request elsewhere is not a websocket
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
    e.value.close()
    assert e.value.code == 426
    with PolicyClient("127.0.0.1", port, timeout=60) as client:
        md = client.get_server_metadata()
        out = client.infer(droid_request())
    assert md == policy.metadata and md["model"] == "pi0_tiny" and md["checkpoint"] == str(ckpt)
    horizon = policy.cfg.action_horizon
    assert out["actions"].shape == (horizon, 8) == (md["action_horizon"], 8)
    assert out["actions"].dtype == np.float64 and np.all(np.isfinite(out["actions"]))
    assert out["policy_timing"]["infer_ms"] > 0 and out["server_timing"]["infer_ms"] > 0


def test_tiny_model_served_actions_equal_in_process_actions(tiny):
    from robosteer_assets.vla.policy import Policy

    ckpt, _, _ = tiny
    served = Policy.from_checkpoint(ckpt, num_steps=NUM_STEPS, seed=5)
    direct = Policy.from_checkpoint(ckpt, num_steps=NUM_STEPS, seed=5)
    with run_in_thread(served, ServerConfig(**LOCAL)) as handle, PolicyClient("127.0.0.1", handle.port) as client:
        wire = [client.infer(droid_request(seed=i))["actions"] for i in range(2)]
    for i, actions in enumerate(wire):  # the same rng sequence; the wire changes no bit
        np.testing.assert_array_equal(actions, direct.infer(droid_request(seed=i))["actions"])
    local = LocalPolicyClient(Policy.from_checkpoint(ckpt, num_steps=NUM_STEPS, seed=5))
    np.testing.assert_array_equal(local.infer(droid_request(seed=0))["actions"], wire[0])


@pytest.mark.parametrize("frame, expected", [
    (b"\x00\x01\x02garbage", "invalid request: message: not valid msgpack"),
    (packb({k: v for k, v in droid_request().items() if k != "observation/wrist_image_left"}),
     "invalid request: request: missing keys ['observation/wrist_image_left']"),
    (packb(droid_request(**{"observation/exterior_image_1_left": np.zeros((224, 224, 3), np.float32)})),
     "invalid request: observation/exterior_image_1_left: expected uint8 [H, W, 3], found dtype float32"),
], ids=["garbage", "missing-key", "float-image"])
def test_tiny_model_malformed_request_then_a_new_connection_works(tiny, frame, expected):
    _, policy, port = tiny
    ex = raw_exchange(port, frame)
    assert ex.reply == expected or (isinstance(ex.reply, str) and ex.reply.startswith(expected)), ex.reply
    assert "\n" not in ex.reply  # one readable line, not a traceback
    assert (ex.close_code, ex.close_reason) == (1011, ERROR_CLOSE_REASON)
    with PolicyClient("127.0.0.1", port, timeout=60) as client:
        actions = client.infer(droid_request(seed=3))["actions"]
    assert actions.shape == (policy.cfg.action_horizon, 8) and np.all(np.isfinite(actions))


@pytest.mark.parametrize("sig,inherit_ignored,said", [
    (signal.SIGINT, False, "interrupted"),
    # a background job of a non-interactive shell starts with SIGINT ignored; Ctrl-C must still stop it
    (signal.SIGINT, True, "interrupted"),
    (signal.SIGTERM, False, "SIGTERM"),  # docker stop / Kubernetes
], ids=["sigint", "sigint-inherited-ignored", "sigterm"])
def test_serve_checkpoint_serves_until_signalled(tiny, sig, inherit_ignored, said):
    ckpt, policy, _ = tiny
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # the disposition serve_checkpoint starts with: ignored (as inherited by a background job) or Python's
    # own handler, whatever the test runner's own disposition is (no preexec_fn: JAX is multithreaded)
    disposition = "signal.SIG_IGN" if inherit_ignored else "signal.default_int_handler"
    code = (f"import logging, signal, sys; signal.signal(signal.SIGINT, {disposition});"
            "logging.basicConfig(level=logging.INFO);"
            "from robosteer_assets.evaluation.server import serve_checkpoint;"
            f"sys.exit(serve_checkpoint({str(ckpt)!r}, '127.0.0.1', {port}, 1, {NUM_STEPS}))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.read() == b"OK\n"
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "serve_checkpoint did not start listening"
                time.sleep(0.2)
        with PolicyClient("127.0.0.1", port, timeout=60) as client:
            assert client.get_server_metadata() == policy.metadata
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired as e:
            proc.kill()
            raise AssertionError(f"server still running 60 s after {sig.name}; stderr tail:\n"
                                 f"{(e.stderr or '')[-3000:]!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"policy server listening on ws://127.0.0.1:{port}" in err
    assert f"policy server on port {port} stopped ({said})" in err and "Traceback" not in err
