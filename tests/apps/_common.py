"""Shared bits of the test programs: JSON-line output and clean SIGTERM."""

from __future__ import annotations

import json
import signal
import sys
from typing import Any


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so atexit runs and the default peer says bye."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
