"""Policy server: a policy behind openpi's websocket protocol (openpi_facts.md §6).

Compatible with the stock ``openpi-client`` (``WebsocketClientPolicy``, ``ActionChunkBroker``)
and with our ``evaluation.client.PolicyClient``:

* ``websockets.asyncio.server.serve`` with ``compression=None``; HTTP ``GET /healthz`` -> 200 ``OK\\n``.
* Per connection the server first sends one binary frame, the packed ``policy.metadata`` dict,
  then loops: receive a binary frame -> ``msgpack_numpy.unpackb`` -> ``policy.infer(obs)`` -> add
  ``server_timing = {"infer_ms", "prev_total_ms"}`` -> send the packed response. ``prev_total_ms``
  (from the second request of a connection on) is the previous request's time from its arrival to
  its response being sent. The response is ``{"actions": [T_a, 8], "policy_timing": {...},
  "server_timing": {...}}``; every ndarray in it must have the chunk as its leading axis, because
  ``ActionChunkBroker`` indexes every ndarray leaf by step (checked here; a violation is a server
  bug reported as a traceback).
* On any error in a request the server sends one text frame, then closes the connection with
  code 1011 and reason ``ERROR_CLOSE_REASON`` (what openpi does); the server keeps serving other
  and new connections. Bad requests (not msgpack-numpy, a text frame, not a dict, over
  ``max_message_bytes``, ``vla.policy.PolicyInputError``) get a one-line message naming the field
  (``"invalid request: observation/joint_position: expected shape (7,), found (6,)"``); any other
  exception gets its traceback. Messages over ``hard_max_message_bytes`` are refused by websockets
  itself before they are read (close code 1009 "message too big", no text frame) so a client
  cannot make the server buffer an unbounded message.

Concurrency (unlike openpi, whose ``infer`` runs on the event loop, issue #717): ``infer`` runs in
a ``ThreadPoolExecutor`` (``workers`` threads), so handshakes, metadata frames, ``/healthz``,
keepalive pings and replies to requests rejected before ``infer`` are never blocked by a running
inference. A policy that declares ``thread_safe = True`` (``vla.policy.Policy`` does: its noise
rng advances under a lock) serves up to ``workers`` requests at once; calls to any other policy
are serialised by a lock (taken in the worker thread, never on the event loop), so with such a
policy a second client's request waits for the running inference, and so does the
``PolicyInputError`` reply to a request that only the policy's own validation rejects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from robosteer_assets.common.progress import get_logger
from robosteer_assets.evaluation.msgpack_numpy import MessageFormatError, packb, unpackb

log = get_logger("evaluation.server")

ERROR_CLOSE_CODE = CloseCode.INTERNAL_ERROR  # 1011
ERROR_CLOSE_REASON = "Internal server error. Traceback included in previous frame."
HEALTH_PATH = "/healthz"


class ServedPolicy(Protocol):
    """What the server needs from a policy: ``metadata`` and ``infer``."""

    @property
    def metadata(self) -> dict: ...

    def infer(self, obs: dict) -> dict: ...


class RequestError(ValueError):
    """A request the server refuses before it reaches the policy (frame type, size, not a dict)."""


@dataclass(frozen=True)
class ServerConfig:
    """Where and how to serve. ``workers``: inference threads; ``max_message_bytes``: largest request
    answered normally (bigger: error frame + 1011; a 224x224x3 uint8 image pair is ~300 KB);
    ``hard_max_message_bytes``: largest request websockets reads at all (bigger: close 1009 without
    reading it; ``None``: twice ``max_message_bytes``)."""

    host: str = "0.0.0.0"
    port: int = 8000
    workers: int = 4
    max_message_bytes: int = 64 * 2**20
    hard_max_message_bytes: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.host, str):
            raise TypeError(f"ServerConfig.host: expected a str, found {type(self.host).__name__}")
        if type(self.port) is not int or not 0 <= self.port <= 65535:
            raise ValueError(f"ServerConfig.port: expected an int in [0, 65535] (0: any free port), "
                             f"found {self.port!r}")
        if type(self.workers) is not int or self.workers < 1:
            raise ValueError(f"ServerConfig.workers: expected a positive int, found {self.workers!r}")
        if type(self.max_message_bytes) is not int or self.max_message_bytes < 1:
            raise ValueError(f"ServerConfig.max_message_bytes: expected a positive int, "
                             f"found {self.max_message_bytes!r}")
        hard = self.hard_max_message_bytes
        if hard is not None and (type(hard) is not int or hard < self.max_message_bytes):
            raise ValueError(f"ServerConfig.hard_max_message_bytes: expected None or an int >= max_message_bytes "
                             f"({self.max_message_bytes}), found {hard!r}")

    @property
    def transport_limit(self) -> int:
        """The ``max_size`` given to websockets."""
        return self.hard_max_message_bytes or 2 * self.max_message_bytes


def is_input_error(exc: BaseException) -> bool:
    """True for errors caused by the request itself (answered with a one-line message)."""
    if isinstance(exc, (RequestError, MessageFormatError)):
        return True
    # vla.policy imports jax; a PolicyInputError can only exist once that module is loaded.
    policy_module = sys.modules.get("robosteer_assets.vla.policy")
    return policy_module is not None and isinstance(exc, policy_module.PolicyInputError)


def error_text(exc: BaseException) -> str:
    """The text frame sent for ``exc``: one line for a bad request, else the traceback."""
    if is_input_error(exc):
        return "invalid request: " + " ".join(str(exc).split())
    return "".join(traceback.format_exception(exc))


def decode_request(message: str | bytes, max_message_bytes: int) -> dict:
    """A received frame -> the observation dict; ``RequestError`` / ``MessageFormatError`` otherwise."""
    if isinstance(message, str):
        raise RequestError("request: expected a binary frame (msgpack-numpy), found a text frame")
    if len(message) > max_message_bytes:
        raise RequestError(f"request: message of {len(message)} bytes exceeds the server limit of "
                           f"{max_message_bytes} bytes (max_message_bytes)")
    obs = unpackb(message)
    if not isinstance(obs, dict):
        raise RequestError(f"request: expected a dict of observations, found {type(obs).__name__}")
    return obs


def _ndarray_leaves(tree: Any, path: str = "") -> Iterator[tuple[str, np.ndarray]]:
    if isinstance(tree, np.ndarray):
        yield path, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _ndarray_leaves(value, f"{path}/{key}" if path else str(key))
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            yield from _ndarray_leaves(value, f"{path}[{i}]")


def build_response(result: Any, infer_ms: float, prev_total_ms: float | None) -> dict:
    """Check a policy's result (``actions`` [T_a, A]; every ndarray leaf chunk-leading) and add
    ``server_timing``."""
    if not isinstance(result, dict):
        raise TypeError(f"policy.infer returned {type(result).__name__}; expected a dict with 'actions'")
    actions = result.get("actions")
    if not isinstance(actions, np.ndarray) or actions.ndim != 2:
        found = f"shape {actions.shape}" if isinstance(actions, np.ndarray) else type(actions).__name__
        raise TypeError(f"policy response actions: expected an ndarray [T_a, action_dim], found {found}")
    for path, leaf in _ndarray_leaves(result):
        if leaf.ndim == 0 or leaf.shape[0] != actions.shape[0]:
            raise ValueError(f"policy response {path}: shape {leaf.shape} does not have the action chunk "
                             f"({actions.shape[0]}) as its leading axis (ActionChunkBroker indexes every ndarray)")
    timing = {"infer_ms": float(infer_ms)}
    if prev_total_ms is not None:
        timing["prev_total_ms"] = float(prev_total_ms)
    return {**result, "server_timing": timing}


def _health(connection: ServerConnection, request: Request) -> Response | None:
    """``process_request``: ``GET /healthz`` -> 200 ``OK\\n``; anything else goes on to the handshake."""
    if request.path == HEALTH_PATH:
        return connection.respond(HTTPStatus.OK, "OK\n")
    return None


class PolicyServer:
    """Serves one policy (anything with ``.metadata`` and ``.infer(obs) -> dict``) over websockets."""

    def __init__(self, policy: ServedPolicy, config: ServerConfig = ServerConfig()):
        metadata = policy.metadata
        if not isinstance(metadata, dict):
            raise TypeError(f"policy.metadata: expected a dict, found {type(metadata).__name__}")
        self.policy = policy
        self.config = config
        self.port: int | None = None
        self._metadata_frame = packb(metadata)
        self._lock = None if getattr(policy, "thread_safe", False) else threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def _infer(self, obs: dict) -> dict:
        if self._lock is None:
            return self.policy.infer(obs)
        with self._lock:
            return self.policy.infer(obs)

    async def _fail(self, ws: ServerConnection, exc: BaseException) -> None:
        text = error_text(exc)
        if is_input_error(exc):
            log.warning("%s: %s", ws.remote_address, text)
        else:
            log.error("%s: request failed\n%s", ws.remote_address, text)
        try:
            await ws.send(text)
            await ws.close(ERROR_CLOSE_CODE, ERROR_CLOSE_REASON)
        except ConnectionClosed:
            pass

    async def _handle(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        try:
            await ws.send(self._metadata_frame)
        except ConnectionClosed:
            return
        prev_total_ms: float | None = None
        while True:
            try:
                message = await ws.recv()
            except ConnectionClosed as exc:
                if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                    log.warning("%s: request refused by websockets: %s", ws.remote_address, exc.sent.reason)
                return
            start = time.monotonic()
            try:
                obs = decode_request(message, self.config.max_message_bytes)
                t0 = time.monotonic()
                result = await loop.run_in_executor(self._executor, self._infer, obs)
                infer_ms = (time.monotonic() - t0) * 1000.0
                payload = packb(build_response(result, infer_ms, prev_total_ms))
            except Exception as exc:
                await self._fail(ws, exc)
                return
            try:
                await ws.send(payload)
            except ConnectionClosed:
                return
            prev_total_ms = (time.monotonic() - start) * 1000.0

    async def serve_forever(self, on_bound: Callable[[int], None] | None = None) -> None:
        """Listen and serve until cancelled; ``on_bound(port)`` is called once listening."""
        cfg = self.config
        self._executor = ThreadPoolExecutor(cfg.workers, thread_name_prefix="policy-infer")
        try:
            async with serve(self._handle, cfg.host, cfg.port, compression=None, max_size=cfg.transport_limit,
                             process_request=_health) as server:
                self.port = _bound_port(server)
                log.info("policy server listening on ws://%s:%d (health: http://%s:%d%s, %d workers)",
                         cfg.host, self.port, cfg.host, self.port, HEALTH_PATH, cfg.workers)
                if on_bound is not None:
                    on_bound(self.port)
                await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _bound_port(server: Server) -> int:
    return int(server.sockets[0].getsockname()[1])


class ServerHandle:
    """A ``PolicyServer`` running in a background thread with its own event loop."""

    def __init__(self, server: PolicyServer, start_timeout: float = 30.0):
        self.server = server
        self._bound = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._run, name="policy-server", daemon=True)
        self._thread.start()
        if not self._bound.wait(start_timeout):
            raise TimeoutError(f"policy server did not start listening within {start_timeout} s")
        if self._error is not None:
            self._thread.join()
            raise self._error

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when the config asked for port 0)."""
        assert self.server.port is not None
        return self.server.port

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._task = loop.create_task(self.server.serve_forever(on_bound=lambda _port: self._bound.set()))
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # e.g. the port is taken: reported by the constructor
            self._error = exc
        finally:
            self._bound.set()
            loop.close()

    def stop(self, timeout: float = 30.0) -> None:
        """Close the server (open connections get 1001) and wait for its thread."""
        if self._thread.is_alive() and self._loop is not None and self._task is not None:
            try:
                self._loop.call_soon_threadsafe(self._task.cancel)
            except RuntimeError:  # the loop closed in the meantime
                pass
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"policy server thread did not stop within {timeout} s")

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_in_thread(policy: ServedPolicy, config: ServerConfig = ServerConfig()) -> ServerHandle:
    """Start serving ``policy`` in a background thread; returns once it listens (``handle.port``)."""
    return ServerHandle(PolicyServer(policy, config))


def serve_checkpoint(checkpoint_dir: str | os.PathLike, host: str = "0.0.0.0", port: int = 8000, workers: int = 4,
                     num_steps: int = 10) -> int:
    """Load ``vla.policy.Policy.from_checkpoint(checkpoint_dir)`` and serve it until SIGINT (Ctrl-C) or
    SIGTERM (``docker stop``, Kubernetes); exit code 0. Both signals get explicit handlers, so the server
    also stops when it inherited SIGINT as ignored (a background job of a non-interactive shell).
    Load errors propagate (they name the file and what was expected)."""
    from robosteer_assets.vla.policy import Policy

    config = ServerConfig(host=host, port=port, workers=workers)
    policy = Policy.from_checkpoint(Path(checkpoint_dir), num_steps=num_steps)
    log.info("serving %s: %s", checkpoint_dir, policy.metadata)

    async def main() -> str:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        received: list[str] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda s=sig: (received.append(s.name), stop.set()))
        server = asyncio.create_task(PolicyServer(policy, config).serve_forever())
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({server, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if server.done():
            server.result()  # the server failed (e.g. port in use): raise it
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
        return received[0] if received else "stopped"

    try:
        why = asyncio.run(main())
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        why = "SIGINT"
    log.info("policy server on port %d stopped (%s)", port, "interrupted" if why == "SIGINT" else why)
    return 0


__all__ = ["ERROR_CLOSE_CODE", "ERROR_CLOSE_REASON", "HEALTH_PATH", "PolicyServer", "RequestError", "ServerConfig",
           "ServerHandle", "ServedPolicy", "build_response", "decode_request", "error_text", "is_input_error",
           "run_in_thread", "serve_checkpoint"]

