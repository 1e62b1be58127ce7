"""Peers in different network namespaces ("hosts" on a private bridge) find each
other by mDNS with no address given, subscribe, receive events and call each
other; killed, cut-off and restarted peers are handled within the bounds."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.netns import Host, make_hosts, netns_unavailable_reason
from tests.procs import APPS, Proc, base_env

HEARTBEAT_TIMEOUT = 1.0

pytestmark = pytest.mark.skipif(netns_unavailable_reason() is not None, reason=str(netns_unavailable_reason()))


@pytest.fixture
def lan() -> Iterator[tuple[list[Host], Callable[..., Proc]]]:
    started: list[Proc] = []
    with make_hosts(4) as hosts:

        def start(host: Host, name: str, group: str = "lab", publish: bool = False) -> Proc:
            env = base_env(
                NET_NAME=name, NET_GROUP=group, NET_DISCOVERY="mdns", NET_HOST="0.0.0.0", NET_PORT=3010,
                NET_HEARTBEAT_INTERVAL=0.2, NET_HEARTBEAT_TIMEOUT=HEARTBEAT_TIMEOUT,
                PUBLISH="1" if publish else "0",
            )
            argv = ["ip", "netns", "exec", host.ns, sys.executable, str(APPS / "mesh_peer.py")]
            proc = Proc(argv, env, name)
            started.append(proc)
            return proc

        try:
            yield hosts, start
        finally:
            for proc in started:
                proc.kill()


def status(proc: Proc, cond: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
    line = proc.expect(lambda o: "status" in o and cond(o["status"]), timeout)
    return line["status"]  # type: ignore[no-any-return]


def test_discovery_events_calls_and_failures_across_hosts(lan: tuple[list[Host], Callable[..., Proc]]) -> None:
    hosts, start = lan
    pub = start(hosts[0], "pub", publish=True)
    sub1 = start(hosts[1], "sub1")
    sub2 = start(hosts[2], "sub2")
    outsider = start(hosts[3], "outsider", group="elsewhere")

    # found with no address given, subscribed, events flowing; calls both ways
    status(sub1, lambda s: s["received"].get("pub", 0) >= 10)
    status(sub2, lambda s: s["received"].get("pub", 0) >= 10)
    assert sub1.seen(lambda o: o.get("called") == "pub")["result"] == "pub"
    assert pub.seen(lambda o: o.get("called") == "sub2")["result"] == "sub2"
    # the outsider links (calls work across groups) but subscribed to nobody
    assert outsider.seen(lambda o: o.get("called") == "pub")["result"] == "pub"
    status(pub, lambda s: sorted(s["subscribers"]) == ["sub1", "sub2"])
    assert status(outsider, lambda s: True)["received"] == {}

    # SIGKILL: no goodbye, detected within the heartbeat bound (EOF usually at once)
    sub2.signal(signal.SIGKILL)
    killed = time.monotonic()
    status(pub, lambda s: s["subscribers"] == ["sub1"], timeout=10)
    assert time.monotonic() - killed < HEARTBEAT_TIMEOUT + 0.5

    # cut cable: nothing but heartbeats notices; then it recovers by itself
    before = status(sub1, lambda s: True)["received"]["pub"]
    hosts[1].link_down()
    cut = time.monotonic()
    status(pub, lambda s: s["subscribers"] == [], timeout=10)
    assert time.monotonic() - cut < HEARTBEAT_TIMEOUT + 0.6
    hosts[1].link_up()
    status(pub, lambda s: s["subscribers"] == ["sub1"], timeout=15)
    status(sub1, lambda s: s["received"]["pub"] > before + 10)

    # a restarted publisher is found again and its subscribers come back unasked
    pub.signal(signal.SIGTERM)
    assert pub.wait(10) == 0
    sub1.expect(lambda o: o.get("peers") == ["outsider"])  # goodbye seen at once
    pub2 = start(hosts[0], "pub", publish=True)
    status(pub2, lambda s: s["subscribers"] == ["sub1"], timeout=15)
    seen = status(sub1, lambda s: True)["received"]["pub"]
    status(sub1, lambda s: s["received"]["pub"] > seen + 10)
    assert status(outsider, lambda s: True)["received"] == {}
