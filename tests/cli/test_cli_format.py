"""Arguments, value rendering, tables and peer names, without a network."""

from __future__ import annotations

import json

import pytest

from net import PeerInfo
from net._cli._common import UsageError, match_peer, parse_kwargs, parse_value
from net._cli._format import dumps, render, render_call_args, table, to_jsonable
from net._cli.info import describe
from net.errors import PeerNotFound


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("-2.5", -2.5),
        ("true", True),
        ("null", None),
        ('"42"', "42"),
        ("[1, 2]", [1, 2]),
        ('{"a": [true]}', {"a": [True]}),
        ("hello", "hello"),
        ("hello world", "hello world"),
        ("", ""),
        ("[1, 2", "[1, 2"),
        ("127.0.0.1:3010", "127.0.0.1:3010"),
    ],
)
def test_arguments_are_json_literals_falling_back_to_strings(text: str, value: object) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_keyword_arguments() -> None:
    assert parse_kwargs(["unit=C", "n=3", "x=", "expr=a=b"]) == {
        "unit": "C",
        "n": 3,
        "x": "",
        "expr": "a=b",
    }
    assert parse_kwargs(None) == {}
    for bad in (["novalue"], ["=1"], ["a b=1"]):
        with pytest.raises(UsageError):
            parse_kwargs(bad)


def test_rendering_for_humans_and_json() -> None:
    value = {"b": b"\x00\xff", "n": [1, 2.5, None, True], 3: "x", "f": float("nan")}
    assert render(value) == '{"b": b\'\\x00\\xff\', "n": [1, 2.5, null, true], 3: "x", "f": nan}'
    assert render("text", top=True) == "text"
    assert render("text") == '"text"'
    assert render(b"\xab" * 100).endswith("... (100 bytes)")
    assert render_call_args([21.5], {"unit": "C"}) == '21.5 unit="C"'
    as_json = json.loads(dumps(value))
    assert as_json == {"b": {"$bytes": "AP8="}, "n": [1, 2.5, None, True], "3": "x", "f": "nan"}
    assert to_jsonable((1, (2,))) == [1, [2]]


def test_table_aligns_columns_and_shortens_long_cells() -> None:
    text = table(("A", "BB"), [("x", "y" * 60), ("long-name", "z")], max_width=10)
    lines = text.splitlines()
    assert lines[0] == "A          BB"
    assert lines[1] == "x          yyyyyyyyy…"
    assert lines[2] == "long-name  z"


def _peer(pid: str, name: str, port: int) -> PeerInfo:
    return PeerInfo(pid, name, "127.0.0.1", port, "default", False)


def test_peer_names_ids_prefixes_and_addresses() -> None:
    peers = [
        _peer("aaaa1111bbbb2222", "alpha", 3010),
        _peer("aaaa3333cccc4444", "beta", 3011),
        _peer("dddd5555eeee6666", "twin", 3012),
        _peer("ffff7777aaaa8888", "twin", 3013),
    ]
    assert match_peer("alpha", peers) is peers[0]
    assert match_peer("127.0.0.1:3011", peers) is peers[1]
    assert match_peer("aaaa3333cccc4444", peers) is peers[1]
    assert match_peer("dddd", peers) is peers[2]
    assert match_peer("nobody", peers) is None
    with pytest.raises(PeerNotFound, match="2 peers are named 'twin'"):
        match_peer("twin", peers)
    with pytest.raises(PeerNotFound, match="ambiguous"):
        match_peer("aaaa", peers)


def test_info_description_shows_signatures_subscribers_links_and_counters() -> None:
    info = {
        "id": "0123456789abcdef",
        "name": "worker",
        "host": "",
        "port": 3010,
        "group": "lab",
        "hub": True,
        "protocol": 1,
        "version": "0.1.0",
        "pid": 42,
        "connections": {"add": "add(a, b)", "info": "info()", "null": "null()"},
        "events": ["temperature"],
        "subscriptions": {"temperature": ["display", "logger"]},
        "subscribed": ["reload"],
        "peers": [
            {
                "id": "fedcba9876543210",
                "name": "display",
                "address": "10.0.0.2:3010",
                "group": "lab",
                "hub": False,
                "dialed": True,
                "rtt_ms": 0.4,
                "events_sent": 7,
                "events_dropped": 1,
                "events_received": 0,
                "events_missed": 0,
                "queued_bytes": 0,
            }
        ],
        "counters": {"events_dropped": 1, "handler_errors": 2, "events_triggered": 8},
        "pruned": [
            {"subscriber": "old", "id": "x", "events": ["temperature"], "reason": "bye", "at": 0}
        ],
    }
    text = describe(info)
    assert "worker  (*:3010)" in text
    assert "(hub)" in text
    assert "  add(a, b)" in text
    assert "temperature  display, logger" in text
    assert "subscribes to: reload" in text
    assert "display  10.0.0.2:3010" in text
    assert "counters: sent 7, dropped 1, missed 0, pruned 1, errors 2" in text
    assert "old" in text and "bye" in text
