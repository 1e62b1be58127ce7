"""Logging helpers: the ``net`` logger and a rate limiter for repetitive warnings."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("net")


class RateLimitedLog:
    """Logs the first occurrence at once, then at most one summary per ``interval``.

    Used for drops and protocol complaints, which can come by the thousand.
    """

    def __init__(self, log: logging.Logger, interval: float = 5.0) -> None:
        self.log = log
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        skipped = self._suppressed.pop(key, 0)
        if skipped:
            msg += " (%d similar messages suppressed)"
            args = (*args, skipped)
        self.log.warning(msg, *args)
