"""Test-side handle on a running ``agent.py`` process."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

AGENT = Path(__file__).with_name("agent.py")

Event = dict[str, Any]


class Agent:
    """A running ``agent.py``: its JSON events, collected by a reader thread."""

    def __init__(self, proc: subprocess.Popen[bytes], stderr: Any, label: str) -> None:
        self.proc = proc
        self.label = label
        self._stderr = stderr
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, name=f"agent-{label}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "garbage", "line": line.decode(errors="replace")}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def stderr_text(self) -> str:
        with contextlib.suppress(Exception):
            self._stderr.seek(0)
            return str(self._stderr.read().decode(errors="replace"))[-4000:]
        return ""

    def wait_for(self, pred: Callable[[Event], bool], timeout: float, what: str) -> Event:
        """First event (already seen or new) matching ``pred``, within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for event in self.events[seen:]:
                    if pred(event):
                        return event
                seen = len(self.events)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    break
                self._cond.wait(remaining)
        raise AssertionError(
            f"agent {self.label}: no {what} within {timeout} s "
            f"(exit={self.proc.poll()}); events={self.events!r}; stderr:\n{self.stderr_text()}"
        )

    def started(self, timeout: float = 15.0) -> Event:
        return self.wait_for(lambda e: e["event"] == "started", timeout, "start")

    def found(self, peer_id: str, timeout: float) -> Event:
        return self.wait_for(
            lambda e: e["event"] == "found" and e["peer"]["peer_id"] == peer_id,
            timeout,
            f"found {peer_id}",
        )

    def lost(self, peer_id: str, timeout: float) -> Event:
        return self.wait_for(
            lambda e: e["event"] == "lost" and e["peer_id"] == peer_id, timeout, f"lost {peer_id}"
        )

    def events_of(self, kind: str) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e["event"] == kind]

    def terminate(self) -> float:
        """SIGTERM (clean stop, goodbyes); returns the monotonic time it was sent."""
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        return t

    def kill(self) -> float:
        t = time.monotonic()
        self.proc.kill()
        return t

    def wait_exit(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout=timeout)
