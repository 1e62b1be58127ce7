"""Discovery between separate OS processes: on loopback, and across namespace hosts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.discovery._agents import Agent
from tests.netns import Host, make_hosts, netns_unavailable_reason

StartAgent = Callable[..., Agent]


def start_pair(agents: StartAgent, *extra: str) -> tuple[Agent, Agent, str, str]:
    a = agents("--interfaces", "loopback", "--name", "alpha", "--port", "1111", *extra, label="a")
    a_id = a.started()["peer_id"]
    b = agents("--interfaces", "loopback", "--name", "beta", "--port", "2222", "--hub", label="b")
    b_id = b.started()["peer_id"]
    return a, b, a_id, b_id


def test_loopback_processes_find_each_other_and_say_goodbye(agents: StartAgent) -> None:
    a, b, a_id, b_id = start_pair(agents)
    seen_by_a = a.found(b_id, timeout=5)["peer"]
    seen_by_b = b.found(a_id, timeout=5)["peer"]
    assert seen_by_a == {
        "peer_id": b_id,
        "name": "beta",
        "group": "test",
        "hub": True,
        "port": 2222,
        "protocol_version": 1,
        "addresses": ["127.0.0.1"],
    }
    assert seen_by_b["name"] == "alpha" and seen_by_b["hub"] is False
    # neither reports itself
    assert all(e["peer"]["peer_id"] != a_id for e in a.events_of("found"))

    sent = b.terminate()  # clean stop: goodbye packets
    lost = a.lost(b_id, timeout=3)
    assert lost["t"] - sent < 3
    b.wait_for(lambda e: e["event"] == "stopped", 5, "clean stop")
    assert b.wait_exit() == 0


def test_sigkilled_peer_is_not_reported_lost(agents: StartAgent) -> None:
    """No goodbye, no 'lost': liveness must come from the peer layer's heartbeats."""
    a, b, _, b_id = start_pair(agents)
    a.found(b_id, timeout=5)
    b.kill()
    b.wait_exit()
    with pytest.raises(AssertionError, match="no lost"):
        a.lost(b_id, timeout=3)
    assert a.proc.poll() is None


def test_three_namespace_hosts_find_each_other(
    netns_hosts: Callable[[int], list[Host]], agents: StartAgent
) -> None:
    hosts = netns_hosts(3)
    running = [
        agents("--interfaces", "all", "--name", f"h{h.index}", host=h, label=f"h{h.index}")
        for h in hosts
    ]
    ids = [agent.started()["peer_id"] for agent in running]
    for i, agent in enumerate(running):
        for j, host in enumerate(hosts):
            if i == j:
                continue
            peer = agent.found(ids[j], timeout=5)["peer"]
            # only the address on the shared link: never another host's loopback
            assert peer["addresses"] == [host.address], peer
            assert peer["name"] == f"h{j}"
        assert all(e["peer"]["peer_id"] != ids[i] for e in agent.events_of("found"))

    sent = running[2].terminate()
    for agent in running[:2]:
        assert agent.lost(ids[2], timeout=3)["t"] - sent < 3


def test_late_joiner_finds_running_peer_quickly(
    netns_hosts: Callable[[int], list[Host]], agents: StartAgent
) -> None:
    """A peer started well after another finds it by asking (not from announcements)."""
    h0, h1 = netns_hosts(2)
    a = agents("--interfaces", "all", "--name", "a", host=h0, label="a")
    a_id = a.started()["peer_id"]
    # The scenario, not synchronisation: let a's start-up announcements (and
    # RFC 6762's one-second multicast rate limit after them) pass.
    time.sleep(1.5)
    b = agents("--interfaces", "all", "--name", "b", host=h1, label="b")
    started = b.started()
    found = b.found(a_id, timeout=5)
    # measured ~0.2 s (first query delay + answer aggregation); >1 s means a
    # responder is being rate-limited by our own queries
    assert found["t"] - started["t"] < 0.9


def test_same_host_peers_prefer_loopback(
    netns_hosts: Callable[[int], list[Host]], agents: StartAgent
) -> None:
    """Two peers in one host see each other on lo and eth0; other hosts only on eth0.

    A loopback-only peer on that host sees them on 127.0.0.1 only, and never the
    other host's peer (whose adverts it may hear: Linux delivers the mDNS traffic
    of eth0 to every :5353 socket once any local socket joined the group there).
    """
    h0, h1 = netns_hosts(2)
    a = agents("--interfaces", "all", "--name", "a", host=h0, label="a")
    b = agents("--interfaces", "all", "--name", "b", host=h0, label="b")
    c = agents("--interfaces", "all", "--name", "c", host=h1, label="c")
    d = agents("--interfaces", "loopback", "--name", "d", host=h0, label="d")
    a_id, b_id, c_id, d_id = (x.started()["peer_id"] for x in (a, b, c, d))

    def addresses_eventually(agent: Agent, peer_id: str, want: list[str]) -> None:
        agent.wait_for(
            lambda e: (
                e["event"] == "found"
                and e["peer"]["peer_id"] == peer_id
                and e["peer"]["addresses"] == want
            ),
            5,
            f"{peer_id} with addresses {want}",
        )

    addresses_eventually(a, b_id, ["127.0.0.1", h0.address])
    addresses_eventually(b, a_id, ["127.0.0.1", h0.address])
    addresses_eventually(c, a_id, [h0.address])
    addresses_eventually(c, b_id, [h0.address])
    addresses_eventually(a, c_id, [h1.address])
    addresses_eventually(d, a_id, ["127.0.0.1"])
    addresses_eventually(d, b_id, ["127.0.0.1"])
    addresses_eventually(a, d_id, ["127.0.0.1"])
    for event in c.events_of("found"):
        assert "127.0.0.1" not in event["peer"]["addresses"]
        assert event["peer"]["peer_id"] != d_id
    for event in d.events_of("found"):
        assert event["peer"]["addresses"] == ["127.0.0.1"]
        assert event["peer"]["peer_id"] != c_id

    # a goodbye on both of a's interfaces: b and c both drop it, once
    sent = a.terminate()
    assert b.lost(a_id, timeout=3)["t"] - sent < 3
    assert c.lost(a_id, timeout=3)["t"] - sent < 3
    assert len(b.events_of("lost")) == 1


_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9999)); s.listen(); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"hi"); c.close()
"""
_CLIENT = """
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], 9999), timeout=1.0); print(c.recv(2).decode())
except OSError as e:
    print("error", type(e).__name__)
"""


def test_netns_helper_link_down_up_and_cleanup() -> None:
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with make_hosts(2) as (h0, h1):
        prefix = h0.ns[: -len("h0")]
        server = h0.spawn([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE)
        assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
        client = [sys.executable, "-c", _CLIENT, h0.address]
        assert h1.run(client).stdout.strip() == "hi"
        h1.link_down()
        assert h1.run(client).stdout.startswith("error")
        h1.link_up()
        assert h1.run(client).stdout.strip() == "hi"
        # no default route: nothing outside the simulated LAN is reachable
        assert h1.run([sys.executable, "-c", _CLIENT, "192.0.2.1"]).stdout.startswith("error")
    assert server.poll() is not None  # killed by pid at cleanup
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in listed
