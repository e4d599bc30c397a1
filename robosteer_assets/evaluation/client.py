"""Policy clients with one interface: ``PolicyClient`` (openpi's websocket protocol) and
``LocalPolicyClient`` (an in-process policy).

``PolicyClient`` speaks the protocol of ``evaluation.server`` / openpi (openpi_facts.md §6): it
connects with ``compression=None, max_size=None``, reads the metadata frame, then sends one packed
observation per ``infer`` and reads one packed response. A text frame from the server is an error
report; it raises ``PolicyServerError`` with the server's message (and the close code the server
sent after it, 1011). The stock ``openpi-client`` pins numpy<2, so our evaluator uses this one.

``LocalPolicyClient`` calls a policy in this process through the same pack / unpack round trip,
request checks, response checks and error texts as the server, so evaluation code behaves the
same whichever client it gets. Like a server connection, it is closed after an error.
"""

from __future__ import annotations

import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from robosteer_assets.evaluation.msgpack_numpy import packb, unpackb
from robosteer_assets.evaluation.server import (
    ERROR_CLOSE_CODE,
    ERROR_CLOSE_REASON,
    ServedPolicy,
    ServerConfig,
    build_response,
    decode_request,
    error_text,
)


class PolicyServerError(RuntimeError):
    """The policy server reported an error (its text frame) or closed the connection."""

    def __init__(self, message: str, close_code: int | None = None, close_reason: str | None = None):
        super().__init__(message)
        self.server_message = message
        self.close_code = close_code
        self.close_reason = close_reason


def _closed_error(what: str, exc: ConnectionClosed) -> PolicyServerError:
    frame = exc.rcvd or exc.sent
    code, reason = (frame.code, frame.reason) if frame is not None else (None, None)
    return PolicyServerError(f"{what}: connection closed (code {code}: {reason or 'no reason'})", code, reason)


class PolicyClient:
    """A connection to a policy server: ``get_server_metadata()``, ``infer(obs)``, ``reset()``, ``close()``.

    ``host`` may be a name / address or a full ``ws://`` URI; ``timeout`` (seconds, ``None``: wait
    forever) bounds the connection handshake and each wait for a server frame."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = 8000, timeout: float | None = 60.0):
        uri = host if host.startswith(("ws://", "wss://")) else f"ws://{host}"
        self.uri = f"{uri}:{port}" if port is not None else uri
        self.timeout = timeout
        try:
            self._ws: ClientConnection = connect(self.uri, compression=None, max_size=None, open_timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"cannot connect to the policy server at {self.uri}: {exc}") from exc
        try:
            metadata = unpackb(self._recv("metadata frame"))
        except BaseException:
            self._ws.close()
            raise
        if not isinstance(metadata, dict):
            self._ws.close()
            raise PolicyServerError(f"{self.uri}: metadata frame: expected a dict, found {type(metadata).__name__}")
        self._metadata = metadata

    def _recv(self, what: str) -> bytes:
        try:
            message = self._ws.recv(timeout=self.timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.uri}: no {what} from the policy server within {self.timeout} s") from None
        except ConnectionClosed as exc:
            raise _closed_error(f"{self.uri}: waiting for the {what}", exc) from None
        if isinstance(message, str):  # the server's error report; it closes the connection next
            code = reason = None
            try:
                self._ws.recv(timeout=5.0)
            except ConnectionClosed as exc:
                code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else (None, None)
            except TimeoutError:
                pass
            self._ws.close()
            raise PolicyServerError(message, code, reason)
        return message

    def get_server_metadata(self) -> dict:
        """The metadata dict the server sent on connect."""
        return self._metadata

    def infer(self, obs: dict) -> dict:
        """Send one observation dict; the server's response dict (``actions``, timings)."""
        try:
            self._ws.send(packb(obs))
        except ConnectionClosed as exc:
            raise _closed_error(f"{self.uri}: sending a request", exc) from None
        response = unpackb(self._recv("response"))
        if not isinstance(response, dict):
            raise PolicyServerError(f"{self.uri}: response: expected a dict, found {type(response).__name__}")
        return response

    def reset(self) -> None:
        """Nothing is sent: openpi's protocol has no reset message."""

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> "PolicyClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LocalPolicyClient:
    """``PolicyClient``'s interface over an in-process policy, through the same wire round trip."""

    def __init__(self, policy: ServedPolicy, max_message_bytes: int = ServerConfig.max_message_bytes):
        self.policy = policy
        self.max_message_bytes = max_message_bytes
        self._metadata = unpackb(packb(policy.metadata))
        self._prev_total_ms: float | None = None
        self._closed = False

    def get_server_metadata(self) -> dict:
        """The policy's metadata, as a server would send it."""
        return self._metadata

    def infer(self, obs: dict) -> dict:
        """Pack, check and unpack ``obs``, run the policy, check / pack / unpack its response."""
        if self._closed:
            raise PolicyServerError("local policy: the client is closed (after close() or an error)")
        message = packb(obs)
        start = time.monotonic()
        try:
            request = decode_request(message, self.max_message_bytes)
            t0 = time.monotonic()
            result: Any = self.policy.infer(request)
            infer_ms = (time.monotonic() - t0) * 1000.0
            payload = packb(build_response(result, infer_ms, self._prev_total_ms))
        except Exception as exc:
            self._closed = True
            raise PolicyServerError(error_text(exc), ERROR_CLOSE_CODE, ERROR_CLOSE_REASON) from exc
        self._prev_total_ms = (time.monotonic() - start) * 1000.0
        return unpackb(payload)

    def reset(self) -> None:
        """Nothing to reset (as ``PolicyClient``)."""

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "LocalPolicyClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
