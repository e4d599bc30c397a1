"""Progress logging for long work. Loggers live under ``robosteer`` so Dagster
(dagster.yaml: managed_python_loggers) shows them in the run log."""

from __future__ import annotations

import logging
import time


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"robosteer.{name}")


class Progress:
    """Log ``done/total`` with rate and ETA at most every ``every_s`` seconds."""

    def __init__(self, logger: logging.Logger, what: str, total: int, every_s: float = 5.0):
        self.logger, self.what, self.total, self.every_s = logger, what, total, every_s
        self.start = self.last = time.monotonic()
        self.done = 0

    def update(self, n: int = 1, **extra) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done >= self.total:
            self.last = now
            el = now - self.start
            rate = self.done / el if el > 0 else float("inf")
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            tail = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items())
            self.logger.info(
                "%s: %d/%d (%.1f/s, eta %.0fs) %s", self.what, self.done, self.total, rate, eta, tail
            )
