"""``netpeer doctor``: its checks pass where things work and explain what fails.

Multicast only ever goes out on the interfaces chosen: loopback here (the suite
runs inside ``unshare -n``), or the ``eth0`` of namespace "hosts" made by
``tests/netns.py``, which exist only inside those namespaces.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

from tests.cli._cli import Runner, cli_env, unique
from tests.netns import Host
from tests.procs import free_port


def checks(stdout: str) -> dict[str, dict[str, Any]]:
    report = json.loads(stdout)
    return {c["check"]: c for c in report["checks"]}


def test_doctor_on_loopback_passes_every_check(netpeer: Runner) -> None:
    port = free_port()
    done = netpeer.run("doctor", "--interfaces", "loopback", "--port", str(port), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    found = checks(done.stdout)
    for name in ("settings", "interfaces", "multicast on lo", "port", "mDNS port"):
        assert found[name]["status"] == "ok", found[name]
    advert = found["self-advertisement"]
    assert advert["status"] == "ok" and advert["data"]["addresses"] == ["127.0.0.1"]
    assert advert["data"]["seconds"] < 3

    human = netpeer.run("doctor", "--interfaces", "loopback", "--port", str(port))
    assert human.returncode == 0
    assert (
        "  ok    multicast on lo: 127.0.0.1: a test packet to 224.0.0.251 came back" in human.stdout
    )
    assert human.stdout.rstrip().endswith("everything looks fine.")


def test_doctor_explains_a_missing_interface(netpeer: Runner) -> None:
    done = netpeer.run("doctor", "--interfaces", "eth9", "--json")
    assert done.returncode == 1
    interfaces = checks(done.stdout)["interfaces"]
    assert interfaces["status"] == "fail"
    assert "no interface named 'eth9' on this host" in interfaces["detail"]
    assert "ip -4 addr" in interfaces["advice"]

    human = netpeer.run("doctor", "--interfaces", "eth9")
    assert human.returncode == 1
    assert "  FAIL  interfaces: NET_INTERFACES=eth9: no interface named 'eth9'" in human.stdout
    assert "        what to do: set NET_INTERFACES" in human.stdout
    assert "1 problem found." in human.stdout


def test_doctor_explains_ports_and_static_peers(netpeer: Runner) -> None:
    _daemon, ready = netpeer.daemon(name="holder")
    port = int(ready["port"])
    done = netpeer.run(
        "doctor", "--interfaces", "loopback", "--port", str(port), "--port-range", "3", "--json"
    )
    found = checks(done.stdout)
    assert found["port"]["status"] == "info"
    assert f"TCP port {port} is taken by the peer 'holder'" in found["port"]["detail"]
    assert found["port"]["data"]["will_use"] > port

    with socket.socket() as blocker:  # a port held by something that is not a peer
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        other = blocker.getsockname()[1]
        env = cli_env(NET_PEERS=f"127.0.0.1:{port},127.0.0.1:{free_port()}")
        done = netpeer.run(
            "doctor", "--interfaces", "loopback", "--host", "127.0.0.1", "--port", str(other),
            "--port-range", "1", "--json", env=env,
        )  # fmt: skip
    assert done.returncode == 1
    found = checks(done.stdout)
    assert found["port"]["status"] == "fail"
    assert f"no free TCP port in {other}..{other}" in found["port"]["detail"]
    assert "NET_PORT" in found["port"]["advice"]
    statics = {k: v for k, v in found.items() if k.startswith("static peer")}
    assert sorted(v["status"] for v in statics.values()) == ["fail", "ok"]
    assert any("is the peer 'holder'" in v["detail"] for v in statics.values())
    assert any("does not answer" in v["detail"] for v in statics.values())


def test_doctor_reports_a_bad_variable(netpeer: Runner) -> None:
    done = netpeer.run("doctor", "--json", env=cli_env(NET_QUEUE_POLICY="maybe"))
    assert done.returncode == 1
    settings = checks(done.stdout)["settings"]
    assert settings["status"] == "fail" and "NET_QUEUE_POLICY='maybe'" in settings["detail"]


def _doctor_in(netpeer: Runner, host: Host, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    env = cli_env()
    del env["NET_HOST"]
    done = netpeer.run("doctor", "--port", "0", "--json", *args, env=env, netns=host.ns)
    assert done.stdout.strip(), done.stderr
    return done.returncode, checks(done.stdout)


def test_doctor_on_a_lan_host_sees_a_down_interface_and_the_other_peers(
    netns_hosts: Callable[[int], list[Host]], netpeer: Runner
) -> None:
    hosts = netns_hosts(2)
    name = unique("lan-peer")
    env = cli_env()
    del env["NET_HOST"]
    # a peer advertising on the other host (mDNS across the simulated LAN)
    other = netpeer.spawn(
        "run", "--name", name, "--port", "0", "--discovery", "mdns", "--json",
        env=env, netns=hosts[1].ns, name="lan peer",
    )  # fmt: skip
    other.expect_json(lambda o: o.get("event") == "ready")

    status, found = _doctor_in(netpeer, hosts[0], "--interfaces", "eth0")
    assert status == 0, found
    assert found["multicast on eth0"]["status"] == "ok"
    assert found["self-advertisement"]["data"]["addresses"] == [hosts[0].address]
    visible = found["peers visible"]["data"]["others"]
    assert [p["name"] for p in visible] == [name]
    assert visible[0]["addresses"] == [hosts[1].address]

    hosts[0].link_down()
    status, found = _doctor_in(netpeer, hosts[0], "--interfaces", "eth0", "--timeout", "1")
    assert status == 1
    assert found["multicast on eth0"]["status"] == "fail"
    assert found["multicast on eth0"]["detail"] == "interface eth0 is down"
    assert "ip link set eth0 up" in found["multicast on eth0"]["advice"]
    assert found["self-advertisement"]["status"] == "fail"
    assert "multicast problem above" in found["self-advertisement"]["advice"]
