"""Run the real ``netpeer`` executable in separate processes and watch its output.

``python -m net.cli`` is the same entry point as the ``netpeer`` console
script (``net.cli:main``); it is used so that the tests do not depend on the
venv's ``bin`` being on ``PATH``. Every process started here is killed by pid
when the test ends, also on failure. Waiting is always for a condition, with
a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
NETPEER = [sys.executable, "-m", "net.cli"]


def cli_env(**net_vars: Any) -> dict[str, str]:
    """The test's environment without NET_*, plus ``net_vars`` (as strings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NET_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env["NET_HOST"] = "127.0.0.1"
    for key, value in net_vars.items():
        env[key] = str(value)
    return env


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


class Cli:
    """A running ``netpeer`` process: its stdout and stderr lines, collected by threads."""

    def __init__(
        self, args: list[str], env: dict[str, str], name: str, prefix: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.args = args
        self.popen = subprocess.Popen(
            [*prefix, *NETPEER, *args],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._cond = threading.Condition()
        self._open = 2
        for stream, lines in ((self.popen.stdout, self.out), (self.popen.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            with self._cond:
                lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    def json_lines(self) -> list[dict[str, Any]]:
        with self._cond:
            lines = list(self.out)
        result = []
        for line in lines:
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict):
                    result.append(obj)
        return result

    def _wait(self, found: Callable[[], Any], what: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = found()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{self.name}: no {what} within {timeout} s\n{self.tail()}"
                    )
                if self._open == 0:
                    raise AssertionError(
                        f"{self.name} exited ({self.popen.poll()}) before {what}\n{self.tail()}"
                    )
                self._cond.wait(remaining)

    def expect_json(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first JSON line on stdout for which ``predicate`` holds."""

        def found() -> dict[str, Any] | None:
            for line in self.out:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and predicate(obj):
                    return obj
            return None

        result: dict[str, Any] = self._wait(found, "matching JSON line", timeout)
        return result

    def expect_out(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """The first stdout line matching the regex ``pattern``."""
        rx = re.compile(pattern)
        result: re.Match[str] = self._wait(
            lambda: next((m for m in map(rx.search, self.out) if m), None),
            f"stdout line matching {pattern!r}",
            timeout,
        )
        return result

    def expect_err(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """The first stderr line matching the regex ``pattern``."""
        rx = re.compile(pattern)
        result: re.Match[str] = self._wait(
            lambda: next((m for m in map(rx.search, self.err) if m), None),
            f"stderr line matching {pattern!r}",
            timeout,
        )
        return result

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for the exit and for all output to be read; returns the exit status."""
        try:
            status = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout} s\n{self.tail()}"
            ) from None
        deadline = time.monotonic() + 5.0
        with self._cond:
            while self._open and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
        return status

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(5)

    def tail(self, n: int = 40) -> str:
        with self._cond:
            return (
                f"--- {self.name} stdout ---\n"
                + "\n".join(self.out[-n:])
                + f"\n--- {self.name} stderr ---\n"
                + "\n".join(self.err[-n:])
            )


class Runner:
    """Starts ``netpeer`` processes for one test and kills them all (by pid) at the end."""

    def __init__(self) -> None:
        self.started: list[Cli] = []

    def spawn(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        name: str = "",
        netns: str | None = None,
    ) -> Cli:
        """Start ``netpeer ARGS`` (inside network namespace ``netns`` if given)."""
        prefix = ("ip", "netns", "exec", netns) if netns else ()
        proc = Cli(
            list(args), env or cli_env(), name or f"netpeer {args[0] if args else ''}", prefix
        )
        self.started.append(proc)
        return proc

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
        netns: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``netpeer ARGS`` to completion (killed at ``timeout``)."""
        proc = self.spawn(*args, env=env, netns=netns)
        status = proc.wait(timeout)
        return subprocess.CompletedProcess(
            proc.args, status, "\n".join(proc.out) + "\n", "\n".join(proc.err) + "\n"
        )

    def daemon(
        self,
        *modules: str,
        name: str | None = None,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> tuple[Cli, dict[str, Any]]:
        """``netpeer run MODULES --json`` on a free port (static discovery); returns it and
        its ``ready`` line."""
        name = name or unique("svc")
        proc = self.spawn(
            "run", *modules, "--json", "--name", name, "--port", "0", "--discovery", "static",
            *extra, env=env, name=f"run {name}",
        )  # fmt: skip
        ready = proc.expect_json(lambda o: o.get("event") == "ready", timeout=20)
        return proc, ready

    def close(self) -> None:
        for proc in self.started:
            proc.kill()


@pytest.fixture
def netpeer() -> Iterator[Runner]:
    runner = Runner()
    try:
        yield runner
    finally:
        runner.close()
