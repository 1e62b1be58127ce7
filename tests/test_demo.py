"""./scripts/demo keeps working: it is the first thing a new user runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_shows_discovery_event_call_and_pruning() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        capture_output=True, text=True, timeout=90,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "broadcast temperature=21.0: delivered to ['display', 'logger']" in text
    assert "remote call read_sensor(unit='F') -> {'value': 70.7, 'unit': 'F'}" in text
    assert "UnknownConnection" in text
    assert "sensor pruned 'display'" in text
    assert "== demo done ==" in text
