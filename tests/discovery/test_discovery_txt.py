"""The TXT record format, and the parser against hostile records."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pytest
from zeroconf import ServiceInfo

from net.discovery._interfaces import ResolvedInterface
from net.discovery._mdns import (
    SERVICE_TYPE,
    Advert,
    FoundPeer,
    InvalidAdvert,
    _address_rank,
    _instance_label,
    advert_properties,
    parse_found_peer,
)

PEER_ID = "0123456789abcdef0123456789abcdef"
GOOD: dict[bytes, bytes | None] = {
    b"id": PEER_ID.encode(),
    b"n": b"alpha",
    b"g": b"lab",
    b"h": b"1",
    b"pv": b"3",
}


def txt(*items: bytes) -> bytes:
    """Raw TXT rdata: length-prefixed strings."""
    return b"".join(bytes([len(i)]) + i for i in items)


def properties_of(raw: bytes) -> dict[bytes, bytes | None]:
    """What zeroconf makes of raw TXT rdata (the path hostile bytes take)."""
    return ServiceInfo(SERVICE_TYPE, f"x.{SERVICE_TYPE}", properties=raw).properties


def test_round_trip_through_zeroconf() -> None:
    advert = Advert(PEER_ID, "Ünïcode name ✓", "group 1", True, 4242, 7)
    info = ServiceInfo(
        SERVICE_TYPE,
        f"x.{SERVICE_TYPE}",
        port=advert.port,
        properties=advert_properties(advert),
        parsed_addresses=["10.0.0.2"],
    )
    assert len(info.text) < 120
    peer = parse_found_peer(properties_of(info.text), info.port, info.parsed_addresses())
    assert peer == FoundPeer(PEER_ID, "Ünïcode name ✓", "group 1", True, 4242, 7, ("10.0.0.2",))


def test_good_and_tolerated() -> None:
    peer = parse_found_peer(GOOD, 80, ["10.0.0.1"])
    assert (peer.name, peer.group, peer.hub, peer.protocol_version) == ("alpha", "lab", True, 3)
    # unknown keys ignored; keys are case-insensitive; empty group allowed
    props = {b"ID": PEER_ID.encode(), b"N": b"a", b"g": b"", b"h": b"0", b"pv": b"0", b"x": None}
    peer = parse_found_peer(props, 1, ["10.0.0.1"])
    assert (peer.group, peer.hub, peer.protocol_version) == ("", False, 0)
    # first of duplicate keys wins (zeroconf keeps the first)
    raw = txt(b"id=" + PEER_ID.encode(), b"n=first", b"n=second", b"g=x", b"h=1", b"pv=1")
    assert parse_found_peer(properties_of(raw), 1, ["10.0.0.1"]).name == "first"
    # unusable addresses are dropped, order kept, duplicates removed
    addresses = ["0.0.0.0", "10.0.0.2", "224.0.0.251", "10.0.0.1", "10.0.0.2", "::1", "240.0.0.1"]
    peer = parse_found_peer(GOOD, 1, addresses)
    assert peer.addresses == ("10.0.0.2", "10.0.0.1")


def with_(**changes: bytes | None) -> dict[bytes, bytes | None]:
    props = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            props.pop(key.encode())
        else:
            props[key.encode()] = value
    return props


HOSTILE_PROPERTIES = [
    with_(id=None),
    with_(id=PEER_ID.upper().encode()),
    with_(id=b"0123456"),
    with_(id=b"0" * 33),
    with_(id=b"0123456789abcdeg"),
    with_(id=b"01234567\x00"),
    with_(id=b"01234567\n"),
    with_(n=None),
    with_(n=b"\xff\xfe"),
    with_(n=b"evil\nINFO forged log line"),
    with_(n=b"\x1b[31mred"),
    with_(n=b"x" * 201),
    with_(n="é".encode() * 101),
    with_(g=None),
    with_(g=b"\x00"),
    with_(h=None),
    with_(h=b""),
    with_(h=b"yes"),
    with_(h=b"true"),
    with_(h=b"2"),
    with_(pv=None),
    with_(pv=b""),
    with_(pv=b"-1"),
    with_(pv=b"65536"),
    with_(pv=b"99999999999999999999999"),
    with_(pv=b"1e3"),
    with_(pv=b" 1"),
    with_(pv=b"01"),
    with_(pv="٣".encode()),  # an Arabic-Indic digit: int() would accept it
    with_(pv=b"0x10"),
    {},
    {b"id": None, b"n": None, b"g": None, b"h": None, b"pv": None},
]


@pytest.mark.parametrize("props", HOSTILE_PROPERTIES)
def test_hostile_properties(props: dict[bytes, bytes | None]) -> None:
    with pytest.raises(InvalidAdvert):
        parse_found_peer(props, 80, ["10.0.0.1"])


@pytest.mark.parametrize("port", [None, 0, -1, 65536, True, "80", 80.0])
def test_hostile_port(port: Any) -> None:
    with pytest.raises(InvalidAdvert):
        parse_found_peer(GOOD, port, ["10.0.0.1"])


@pytest.mark.parametrize(
    "addresses",
    [[], ["0.0.0.0"], ["::1", "fe80::1"], ["224.0.0.1", "255.255.255.255"], [None, 1, b"1.2.3.4"]],
)
def test_hostile_addresses(addresses: list[Any]) -> None:
    with pytest.raises(InvalidAdvert):
        parse_found_peer(GOOD, 80, addresses)


class Exploding(dict):
    def items(self) -> Any:
        raise RuntimeError("boom")


def test_hostile_containers() -> None:
    with pytest.raises(InvalidAdvert):
        parse_found_peer(Exploding(), 80, ["10.0.0.1"])

    def bad_iter() -> Any:
        yield "10.0.0.1"
        raise RuntimeError("boom")

    with pytest.raises(InvalidAdvert):
        parse_found_peer(GOOD, 80, bad_iter())


def test_fuzz_raw_txt_never_raises_anything_else() -> None:
    rng = random.Random(1234)
    good_raw = txt(*(k + b"=" + v for k, v in GOOD.items() if v is not None))
    accepted = 0
    for i in range(3000):
        if i % 2:
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        else:
            data = bytearray(good_raw)
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            raw = bytes(data)
        try:
            peer = parse_found_peer(properties_of(raw), rng.randrange(-5, 70000), ["10.0.0.1"])
        except InvalidAdvert:
            continue
        accepted += 1
        assert peer.name.isprintable() and len(peer.name.encode()) <= 200
        assert 1 <= peer.port <= 65535
    assert accepted > 0  # mutations that leave the record valid still pass


@pytest.mark.parametrize(
    "kwargs",
    [
        {"peer_id": "ABCDEF0123456789"},
        {"peer_id": "abc"},
        {"peer_id": "0" * 33},
        {"name": "a\nb"},
        {"name": "x" * 201},
        {"group": "\x00"},
        {"hub": 1},
        {"port": 0},
        {"port": 65536},
        {"port": True},
        {"protocol_version": -1},
        {"protocol_version": 70000},
    ],
)
def test_advert_validation(kwargs: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "peer_id": PEER_ID,
        "name": "n",
        "group": "g",
        "hub": False,
        "port": 1,
        "protocol_version": 1,
    }
    fields.update(kwargs)
    with pytest.raises(ValueError):
        Advert(**fields)


def test_instance_label_is_short_and_unique() -> None:
    for name in ["", "x" * 200, "émoji 🎉 name", "a.b.c", "---"]:
        advert = Advert(PEER_ID, name, "g", False, 1, 1)
        for index in (0, 1, 12):
            label = _instance_label(advert, index)
            assert len(label.encode()) <= 63
            assert PEER_ID in label
            assert "." not in label
    advert = Advert(PEER_ID, "same", "g", False, 1, 1)
    assert _instance_label(advert, 0) != _instance_label(advert, 1)


def iface(name: str, cidrs: list[str], loopback: bool = False) -> ResolvedInterface:
    nets = tuple(ipaddress.IPv4Network(c, strict=False) for c in cidrs)
    return ResolvedInterface(name, tuple(c.split("/")[0] for c in cidrs), nets, loopback)


def test_address_rank() -> None:
    lo = iface("lo", ["127.0.0.1/8"], loopback=True)
    eth0 = iface("eth0", ["192.168.1.5/24"])
    docker0 = iface("docker0", ["172.17.0.1/16"])
    ours = [eth0, docker0, lo]
    assert _address_rank("127.0.0.1", ours) == 0
    assert _address_rank("127.0.0.2", ours) == 0
    assert _address_rank("192.168.1.9", ours) == 1
    assert _address_rank("172.17.0.3", ours) == 1
    assert _address_rank("10.9.9.9", ours) == 2
    assert _address_rank("10.9.9.9", [lo]) == 2
    # restricted NET_INTERFACES: only what our interfaces reach
    assert _address_rank("10.9.9.9", ours, routed=False) is None
    assert _address_rank("192.168.1.9", [lo], routed=False) is None
    assert _address_rank("127.0.0.1", [eth0], routed=False) is None
    assert _address_rank("127.0.0.1", [lo], routed=False) == 0
