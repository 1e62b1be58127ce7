"""NET_INTERFACES parsing and resolution."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest

from net.discovery._interfaces import (
    ALL,
    LOOPBACK,
    InterfaceChoice,
    parse_interfaces,
    resolve_addresses,
    resolve_interfaces,
)
from tests.netns import Host


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ALL),
        ("", ALL),
        ("  ", ALL),
        ("all", ALL),
        (" ALL ", ALL),
        ("loopback", LOOPBACK),
        ("lo", LOOPBACK),
        ("LO", LOOPBACK),
        ("eth0", InterfaceChoice("list", ("eth0",))),
        ("eth0, wlan0", InterfaceChoice("list", ("eth0", "wlan0"))),
        ("192.168.1.5", InterfaceChoice("list", (), ("192.168.1.5",))),
        ("eth0,10.0.0.1", InterfaceChoice("list", ("eth0",), ("10.0.0.1",))),
        ("10.0.0.1,10.0.0.1,eth0,eth0", InterfaceChoice("list", ("eth0",), ("10.0.0.1",))),
        ("lo,eth0", InterfaceChoice("list", ("lo", "eth0"))),
        ("eth0:1,br-1a,wlp3s0", InterfaceChoice("list", ("eth0:1", "br-1a", "wlp3s0"))),
        ("{846EE342-7039-11DE}", InterfaceChoice("list", ("{846EE342-7039-11DE}",))),
    ],
)
def test_parse_good(value: str | None, expected: InterfaceChoice) -> None:
    assert parse_interfaces(value) == expected


def test_str_round_trips() -> None:
    for value in ("all", "loopback", "eth0,wlan0,10.0.0.1"):
        choice = parse_interfaces(value)
        assert parse_interfaces(str(choice)) == choice


@pytest.mark.parametrize(
    "value",
    [
        "eth0,,eth1",
        ",",
        "eth0,",
        "all,eth0",
        "eth0,loopback",
        "::1",
        "fe80::1%eth0",
        "2001:db8::1,eth0",
        "256.1.1.1",
        "1.2.3.999",
        "0.0.0.0",
        "224.0.0.251",
        "255.255.255.255",
        "eth 0",
        "eth0;rm -rf",
        "../etc",
        "a" * 65,
        "eth\n0",
        "\x00",
        "ét0",
    ],
)
def test_parse_bad(value: str) -> None:
    with pytest.raises(ValueError, match="NET_INTERFACES") as info:
        parse_interfaces(value)
    assert "accepted" in str(info.value)


def test_resolve_loopback() -> None:
    assert resolve_addresses(LOOPBACK) == ["127.0.0.1"]
    (lo,) = resolve_interfaces(LOOPBACK)
    assert lo.loopback
    assert resolve_addresses(parse_interfaces("127.0.0.1")) == ["127.0.0.1"]


def test_resolve_all_includes_loopback() -> None:
    addresses = resolve_addresses(ALL)
    assert "127.0.0.1" in addresses
    assert all(":" not in a for a in addresses)
    # loopback comes last
    assert resolve_interfaces(ALL)[-1].loopback


def test_resolve_unknown() -> None:
    with pytest.raises(ValueError, match=r"NET_INTERFACES.*no interface named 'nosuch0'"):
        resolve_addresses(parse_interfaces("nosuch0"))
    with pytest.raises(ValueError, match=r"NET_INTERFACES.*not an address of this host"):
        resolve_addresses(parse_interfaces("10.254.254.254"))


_RESOLVE_SNIPPET = """
import json
from net.discovery._interfaces import parse_interfaces, resolve_addresses
values = ["all", "lo", "eth0", "10.77.0.2,lo"]
print(json.dumps({v: resolve_addresses(parse_interfaces(v)) for v in values}))
"""


def test_resolve_in_namespace_host(netns_hosts: Callable[[int], list[Host]]) -> None:
    hosts = netns_hosts(2)
    result = hosts[1].run([sys.executable, "-c", _RESOLVE_SNIPPET], timeout=30)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got == {
        "all": ["10.77.0.2", "127.0.0.1"],
        "lo": ["127.0.0.1"],
        "eth0": ["10.77.0.2"],
        "10.77.0.2,lo": ["10.77.0.2", "127.0.0.1"],
    }
