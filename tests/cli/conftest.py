"""Fixtures for the ``netpeer`` tests: a process runner and mDNS availability."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `tests.*` must import however pytest was started
    sys.path.insert(0, str(ROOT))

from tests.cli._cli import netpeer  # noqa: E402
from tests.netns import netns_hosts  # noqa: E402

__all__ = ["netns_hosts", "netpeer"]
