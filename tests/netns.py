"""Simulated LAN for tests and benchmarks: N "hosts" as Linux network namespaces.

Each host is a network namespace with ``lo`` and ``eth0`` (one address in a
private /24, no default route). The ``eth0``\\s are veth pairs whose other ends
sit on a bridge in a separate "switch" namespace, so the hosts can reach each
other (unicast and mDNS multicast) and nothing else: none of these addresses
exists in the root namespace, and nothing is connected to a real interface.

Plain use (tests, or a benchmark script after ``sys.path.insert(0, ROOT)``)::

    from tests.netns import make_hosts

    with make_hosts(3) as hosts:                  # raises NetnsUnavailable if it can't
        proc = hosts[0].spawn([sys.executable, "-c", "..."], stdout=subprocess.PIPE)
        hosts[1].link_down(); hosts[1].link_up()
    # processes started with spawn() are killed (by pid), namespaces deleted

As a pytest fixture (``tests/discovery/conftest.py`` does this; a top-level
``conftest.py`` can do the same with ``from tests.netns import netns_hosts``)::

    def test_x(netns_hosts):
        hosts = netns_hosts(3)                    # skips if namespaces are unavailable

Needs root (``ip netns``); skipped with a reason when not root, when ``ip`` is
missing, or when ``NET_TEST_NO_NETNS=1``. Namespace names are global, so every
``make_hosts`` call uses a fresh unique prefix (``nt<pid><random>-``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = [
    "Host",
    "NetnsUnavailable",
    "make_hosts",
    "netns_hosts",
    "netns_unavailable_reason",
    "skip_unless_netns",
]

SUBNET = "10.77.0"  # hosts get 10.77.0.1, 10.77.0.2, ... /24 (inside the namespaces only)
MAX_HOSTS = 200
_IP_TIMEOUT = 10.0


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be used here (not root, disabled, no iproute2)."""


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be used, or None if they can."""
    if os.environ.get("NET_TEST_NO_NETNS") == "1":
        return "network namespaces disabled (NET_TEST_NO_NETNS=1)"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') not found"
    return None


def skip_unless_netns() -> None:
    """``pytest.skip`` with the reason when namespaces are unavailable."""
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def _ip(*args: str) -> None:
    try:
        subprocess.run(
            ["ip", *args],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=_IP_TIMEOUT,
        )
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
        raise RuntimeError(f"ip {' '.join(args)} failed: {err}") from None


@dataclass
class Host:
    """One simulated machine: namespace ``ns`` with ``eth0`` at ``address``."""

    index: int
    ns: str
    address: str
    prefixlen: int = 24
    _procs: list[subprocess.Popen[Any]] = field(default_factory=list, repr=False)

    def spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        **popen_kwargs: Any,
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` inside this host (``ip netns exec``); killed at cleanup.

        ``ip netns exec`` execs the command, so ``proc.pid`` is the command's pid.
        ``env`` replaces the environment (like ``Popen``); ``None`` inherits it.
        Other keyword arguments go to ``subprocess.Popen`` (stdin defaults to
        ``DEVNULL``).
        """
        popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc: subprocess.Popen[Any] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *argv],
            env=dict(env) if env is not None else None,
            **popen_kwargs,
        )
        self._procs.append(proc)
        return proc

    def run(self, argv: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside this host to completion; output captured as text."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def link_down(self) -> None:
        """Cut this host's cable (``ip -n NS link set eth0 down``)."""
        _ip("-n", self.ns, "link", "set", "eth0", "down")

    def link_up(self) -> None:
        """Plug it back in (the address stays configured)."""
        _ip("-n", self.ns, "link", "set", "eth0", "up")

    def kill_processes(self, grace: float = 1.0) -> None:
        """Kill what :meth:`spawn` started, by pid: SIGTERM, then SIGKILL after ``grace``."""
        procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5.0)
        for proc in procs:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


@contextlib.contextmanager
def make_hosts(n: int, *, prefix: str | None = None) -> Iterator[list[Host]]:
    """Create ``n`` hosts on one private switch; tear everything down on exit.

    Raises :class:`NetnsUnavailable` if namespaces cannot be used (tests should
    call :func:`skip_unless_netns` first, or use the ``netns_hosts`` fixture).
    On exit, even on error: processes started with ``Host.spawn`` are killed by
    pid, then every namespace made here is deleted (which removes the veths and
    the bridge).
    """
    reason = netns_unavailable_reason()
    if reason is not None:
        raise NetnsUnavailable(reason)
    if not 1 <= n <= MAX_HOSTS:
        raise ValueError(f"n must be in 1..{MAX_HOSTS}")
    prefix = prefix or f"nt{os.getpid()}{secrets.token_hex(3)}-"
    switch = f"{prefix}sw"
    made: list[str] = []
    hosts: list[Host] = []
    try:
        _ip("netns", "add", switch)
        made.append(switch)
        _ip(
            "-n", switch, "link", "add", "br0", "type", "bridge",
            "mcast_snooping", "0", "stp_state", "0", "forward_delay", "0",
        )  # fmt: skip
        _ip("-n", switch, "link", "set", "br0", "up")
        for i in range(n):
            ns = f"{prefix}h{i}"
            _ip("netns", "add", ns)
            made.append(ns)
            host = Host(index=i, ns=ns, address=f"{SUBNET}.{i + 1}")
            hosts.append(host)
            _ip("-n", switch, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0",
                "netns", ns)  # fmt: skip
            _ip("-n", switch, "link", "set", f"p{i}", "master", "br0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{host.address}/{host.prefixlen}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        yield hosts
    finally:
        for host in hosts:
            host.kill_processes()
        errors = []
        for ns in reversed(made):
            try:
                _ip("netns", "del", ns)
            except Exception as exc:
                errors.append(str(exc))
        if errors and sys.exc_info()[0] is None:
            raise RuntimeError("could not delete test namespaces: " + "; ".join(errors))


@pytest.fixture
def netns_hosts() -> Iterator[Callable[[int], list[Host]]]:
    """Factory fixture: ``hosts = netns_hosts(3)``; skips when unavailable.

    Everything made through it is torn down after the test, pass or fail.
    """
    with contextlib.ExitStack() as stack:

        def factory(n: int) -> list[Host]:
            skip_unless_netns()
            return stack.enter_context(make_hosts(n))

        yield factory
