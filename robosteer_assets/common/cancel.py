"""Cooperative cancellation for long steps (activation extraction, training).

A cancelled Dagster run sends SIGINT (then SIGTERM) to the dagster-pipes
subprocess. A KeyboardInterrupt raised asynchronously can be swallowed when it
lands inside a C callback (e.g. JAX's garbage-collection hook: "Exception
ignored in ... KeyboardInterrupt"), and the step would run to the end. So the
remote entry point turns the signals into a flag, and long loops call
``raise_if_cancelled()`` between batches / steps.
"""

from __future__ import annotations

import signal
import threading

_EVENT = threading.Event()


class Cancelled(KeyboardInterrupt):
    """Raised between units of work after SIGINT/SIGTERM."""


def install_signal_handlers() -> None:
    def handler(signum, frame):
        _EVENT.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def cancelled() -> bool:
    return _EVENT.is_set()


def raise_if_cancelled(what: str = "step") -> None:
    if _EVENT.is_set():
        raise Cancelled(f"{what} cancelled by signal")
