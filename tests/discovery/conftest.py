"""Fixtures for discovery tests: namespace hosts and discovery agent processes."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `tests.netns` must import however pytest was started
    sys.path.insert(0, str(ROOT))

from tests.discovery._agents import AGENT, Agent  # noqa: E402
from tests.netns import Host, netns_hosts  # noqa: E402

__all__ = ["agents", "netns_hosts"]


@pytest.fixture
def agents() -> Iterator[Callable[..., Agent]]:
    """``start(*args, host=None, label=...) -> Agent``: launch ``agent.py`` (in ``host``).

    Every agent is killed by pid after the test (SIGTERM, then SIGKILL).
    """
    started: list[Agent] = []

    def start(*args: str, host: Host | None = None, label: str | None = None) -> Agent:
        argv: Sequence[str] = [sys.executable, str(AGENT), *args]
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed at teardown)
        kwargs: dict[str, Any] = {
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.PIPE,
            "stderr": stderr,
        }
        proc = host.spawn(argv, **kwargs) if host is not None else subprocess.Popen(argv, **kwargs)
        agent = Agent(proc, stderr, label or f"{len(started)}")
        started.append(agent)
        return agent

    try:
        yield start
    finally:
        for agent in started:
            if agent.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    agent.proc.send_signal(signal.SIGTERM)
        for agent in started:
            try:
                agent.proc.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                agent.proc.kill()
                agent.proc.wait(timeout=5.0)
            if agent.proc.stdout is not None:
                agent.proc.stdout.close()
            agent._stderr.close()
