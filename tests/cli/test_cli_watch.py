"""``netpeer peers --watch``: a live table in a real terminal (tmux), lines when piped."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from tests.cli._cli import NETPEER, ROOT, Runner, cli_env, unique
from tests.procs import free_port


class Tmux:
    """One private tmux server (its own socket) running one command in a 160x40 pane."""

    def __init__(self, command: str) -> None:
        self.socket = unique("netpeer-test")
        self._tmux("new-session", "-d", "-s", "watch", "-x", "160", "-y", "40", command)
        self.pane_pid = int(self._tmux("display-message", "-p", "-t", "watch", "#{pane_pid}"))

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        if done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    def screen(self) -> str:
        try:
            return self._tmux("capture-pane", "-p", "-t", "watch")
        except RuntimeError:
            return ""

    def wait_screen(
        self, condition: Callable[[str], bool], what: str, timeout: float = 15.0
    ) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"terminal never showed {what}; it shows:\n{text}")
            time.sleep(0.05)  # polling the terminal for a condition, with a deadline

    def alive(self) -> bool:
        try:
            os.kill(self.pane_pid, 0)
        except ProcessLookupError:
            return False
        return True

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pane_pid, signal.SIGKILL)
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def tmux() -> Iterator[Callable[[str], Tmux]]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    made: list[Tmux] = []

    def start(command: str) -> Tmux:
        t = Tmux(command)
        made.append(t)
        return t

    try:
        yield start
    finally:
        for t in made:
            t.close()


def test_watch_in_a_terminal_shows_a_peer_appear_and_disappear(
    netpeer: Runner, tmux: Callable[[str], Tmux]
) -> None:
    port = free_port()
    env = cli_env()
    exports = " ".join(
        f"{k}={shlex.quote(v)}"
        for k, v in env.items()
        if k in ("PATH", "PYTHONPATH", "PYTHONUNBUFFERED", "NET_HOST", "HOME")
    )
    argv = [
        *NETPEER,
        "peers",
        "--watch",
        "--peers",
        f"127.0.0.1:{port}",
        "--discovery",
        "static",
        "--interval",
        "0.5",
    ]
    term = tmux(
        f"cd {shlex.quote(str(ROOT))} && exec env -i TERM=xterm {exports} {shlex.join(argv)}"
    )
    term.wait_screen(
        lambda s: "netpeer peers --watch: 0 peers" in s and "(no peers)" in s, "an empty table"
    )

    name = unique("watched")
    daemon = netpeer.spawn(
        "run", str(ROOT / "tests/cli/apps/service.py"), "--name", name, "--port", str(port),
        "--port-range", "1", "--discovery", "static", "--json", env=env, name="daemon",
    )  # fmt: skip
    daemon.expect_json(lambda o: o.get("event") == "ready")
    screen = term.wait_screen(
        lambda s: "1 peer " in s and name in s and "add, echo, fail" in s, "the daemon in the table"
    )
    assert "NAME" in screen and "CONNECTIONS" in screen and f"127.0.0.1:{port}" in screen
    assert screen.count(name) == 1  # redrawn in place, not scrolled

    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    term.wait_screen(lambda s: "0 peers" in s and name not in s, "the daemon gone")

    subprocess.run(["tmux", "-L", term.socket, "send-keys", "-t", "watch", "C-c"], timeout=10)
    deadline = time.monotonic() + 10
    while term.alive():
        assert time.monotonic() < deadline, "netpeer peers --watch did not end on Ctrl-C"
        time.sleep(0.05)


def test_watch_piped_prints_joined_and_left_lines(netpeer: Runner) -> None:
    port = free_port()
    watch = netpeer.spawn(
        "peers", "--watch", "--json", "--peers", f"127.0.0.1:{port}", "--discovery", "static",
        name="watch",
    )  # fmt: skip
    plain = netpeer.spawn(
        "peers", "--watch", "--peers", f"127.0.0.1:{port}", "--discovery", "static", name="plain"
    )
    name = unique("watched")
    daemon = netpeer.spawn(
        "run", "--name", name, "--port", str(port), "--port-range", "1", "--discovery", "static",
        "--json", name="daemon",
    )  # fmt: skip
    ready = daemon.expect_json(lambda o: o.get("event") == "ready")
    joined = watch.expect_json(lambda o: o.get("event") == "joined")
    assert joined["peer"]["id"] == ready["id"] and joined["peer"]["name"] == name
    assert "connections" in joined["peer"]
    plain.expect_out(
        rf"^\+ [0-9:.]+ {name}  127\.0\.0\.1:{port}  group=default  id={ready['id'][:8]}"
    )
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    left = watch.expect_json(lambda o: o.get("event") == "left")
    assert left["peer"]["id"] == ready["id"]
    plain.expect_out(rf"^- [0-9:.]+ {name}  .*\(gone\)$")
    for proc in (watch, plain):
        proc.signal(signal.SIGINT)
        assert proc.wait() == 0
