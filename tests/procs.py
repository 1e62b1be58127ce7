"""Run test programs as real OS processes and read their JSON-lines output.

Every process started here is killed (by pid) when the test ends, also when it
fails; waiting is always for a condition, with a deadline.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**net_vars: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NET_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("NET_HOST", "127.0.0.1")
    env.setdefault("NET_DISCOVERY", "static")  # tests that want mDNS ask for it
    for key, value in net_vars.items():
        env[key] = str(value)
    return env


class Proc:
    """A child process whose stdout lines (JSON objects) are collected in order."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.popen = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        self.lines: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read_stdout(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = {"raw": line}
            self._queue.put(obj)
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.stderr.append(line.rstrip())

    def expect(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first line (since the last expect) for which ``predicate`` is true."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name}: timed out; stderr tail:\n" + "\n".join(self.stderr[-30:])
                )
            try:
                obj = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if obj is None:
                self._queue.put(None)
                raise AssertionError(
                    f"{self.name} exited ({self.popen.poll()}) first; stderr tail:\n"
                    + "\n".join(self.stderr[-30:])
                )
            self.lines.append(obj)
            if predicate(obj):
                return obj

    def seen(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        """Like ``expect``, but a line already read counts too."""
        for obj in self.lines:
            if predicate(obj):
                return obj
        return self.expect(predicate, timeout)

    def expect_key(self, key: str, timeout: float = 15.0) -> dict[str, Any]:
        return self.expect(lambda o: key in o, timeout)

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def wait(self, timeout: float = 10.0) -> int:
        return self.popen.wait(timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, signal.SIGCONT)
                os.kill(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(5)


@contextmanager
def processes() -> Iterator[Callable[..., Proc]]:
    """Yields ``spawn(app, env, name)``; kills every spawned process on exit."""
    started: list[Proc] = []

    def spawn(
        app: str, env: dict[str, str], name: str | None = None, args: list[str] | None = None
    ) -> Proc:
        proc = Proc([sys.executable, str(APPS / f"{app}.py"), *(args or [])], env, name or app)
        started.append(proc)
        return proc

    try:
        yield spawn
    finally:
        for proc in started:
            proc.kill()
