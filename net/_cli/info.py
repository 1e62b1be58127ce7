"""``netpeer info PEER``: one peer in detail, from its ``info``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..errors import NetError
from . import _common as c
from ._format import BUILTIN_CONNECTIONS, dumps, join_names, out, table

HELP = "show one peer in detail: connections, events, subscribers, links, counters"

DESCRIPTION = """\
Ask one peer for its info and show it: who it is, the connections it offers
(with their signatures), the events it publishes and who subscribes to them,
the events it subscribes to, its links with their counters, its own counters
(events sent, dropped, missed, pruned subscribers, errors) and recent prunings.

PEER is a name, an id (or a unique prefix of at least 4 hex digits) or
HOST:PORT; HOST:PORT is contacted directly, the others are looked up first.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "info",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[c.json_option(), c.client_options(), c.peer_options(daemon=False)],
    )
    p.add_argument("peer", metavar="PEER", help="name, id (or id prefix) or HOST:PORT")
    p.add_argument(
        "--timeout",
        type=c.positive_float,
        default=10.0,
        metavar="S",
        help="how long to wait for the answer (default 10 s)",
    )
    p.set_defaults(_main=main)
    return p


def main(args: argparse.Namespace) -> int:
    c.configure_logging(args.log_level, default="WARNING")
    c.make_settings(args, daemon=False)
    return c.run_trio(lambda: _info(args))


async def _info(args: argparse.Namespace) -> int:
    async with c.client(args) as session:
        target = await session.locate(args.peer, args.wait)
        try:
            info = await session.peer.remote_info(target, timeout=args.timeout)
        except NetError as exc:
            raise c.Failure(f"{args.peer}: {exc}") from None
        if not isinstance(info, dict):
            raise c.Failure(f"{args.peer} answered info with a {type(info).__name__}")
        linked = session.find(info.get("id", "")) if info.get("id") else None
        if linked is not None:
            info = {**info, "address": linked.address}
        if args.json:
            out(dumps(info, indent=2))
        else:
            out(describe(info))
        return c.EXIT_OK


def _counter(counters: dict[str, Any], key: str) -> int:
    value = counters.get(key, 0)
    return value if isinstance(value, int) else 0


def describe(info: dict[str, Any]) -> str:
    """The human rendering of an ``info`` dict."""
    lines: list[str] = []
    counters: dict[str, Any] = info.get("counters") or {}
    links: list[dict[str, Any]] = [lk for lk in info.get("peers") or () if isinstance(lk, dict)]
    pruned: list[dict[str, Any]] = [p for p in info.get("pruned") or () if isinstance(p, dict)]
    where = info.get("address") or f"{info.get('host') or '*'}:{info.get('port')}"
    lines.append(f"{info.get('name')}  ({where})")
    lines.append(f"  id        {info.get('id')}")
    lines.append(f"  group     {info.get('group')}{'   (hub)' if info.get('hub') else ''}")
    lines.append(
        f"  version   net {info.get('version')}, protocol {info.get('protocol')}, "
        f"pid {info.get('pid')}"
    )

    connections: dict[str, Any] = info.get("connections") or {}
    user = {k: v for k, v in connections.items() if k not in BUILTIN_CONNECTIONS}
    lines.append("")
    lines.append(
        f"connections ({len(user)}; built-in: {join_names(sorted(BUILTIN_CONNECTIONS & set(connections)))}):"
    )
    if user:
        lines.extend(f"  {sig}" for _, sig in sorted(user.items()))
    else:
        lines.append("  (none)")

    subscriptions: dict[str, list[str]] = info.get("subscriptions") or {}
    events = sorted(set(info.get("events") or ()) | set(subscriptions))
    lines.append("")
    lines.append("events published, and their subscribers:")
    if events:
        lines.append(
            table(
                ("EVENT", "SUBSCRIBERS"),
                [(e, join_names(subscriptions.get(e, []), "(none)")) for e in events],
                max_width=0,
                indent="  ",
            )
        )
    else:
        lines.append("  (none)")
    lines.append("")
    lines.append(f"subscribes to: {join_names(info.get('subscribed') or [], '(nothing)')}")

    lines.append("")
    lines.append(f"links ({len(links)}):")
    if links:
        lines.append(
            table(
                (
                    "NAME",
                    "ADDRESS",
                    "GROUP",
                    "ID",
                    "DIALED",
                    "RTT",
                    "SENT",
                    "DROPPED",
                    "RECEIVED",
                    "MISSED",
                    "QUEUED",
                ),
                [
                    (
                        lk.get("name"),
                        lk.get("address"),
                        lk.get("group"),
                        str(lk.get("id", ""))[:8],
                        "out" if lk.get("dialed") else "in",
                        "-" if lk.get("rtt_ms") is None else f"{lk.get('rtt_ms')} ms",
                        lk.get("events_sent", 0),
                        lk.get("events_dropped", 0),
                        lk.get("events_received", 0),
                        lk.get("events_missed", 0),
                        lk.get("queued_bytes", 0),
                    )
                    for lk in links
                ],
                indent="  ",
            )
        )
    else:
        lines.append("  (none)")

    errors = sum(
        _counter(counters, k)
        for k in ("handler_errors", "calls_failed", "protocol_errors", "calls_unknown")
    )
    lines.append("")
    lines.append(
        "counters: "
        f"sent {sum(int(lk.get('events_sent') or 0) for lk in links)}, "
        f"dropped {_counter(counters, 'events_dropped')}, "
        f"missed {_counter(counters, 'events_missed')}, "
        f"pruned {len(pruned)}, "
        f"errors {errors}"
    )
    if counters:
        lines.append(
            table(("COUNTER", "VALUE"), sorted(counters.items()), max_width=0, indent="  ")
        )

    if pruned:
        lines.append("")
        lines.append("recently pruned subscribers:")
        lines.append(
            table(
                ("WHEN", "SUBSCRIBER", "EVENTS", "REASON"),
                [
                    (
                        _when(p.get("at")),
                        p.get("subscriber") or str(p.get("id", ""))[:8],
                        join_names(p.get("events") or []),
                        p.get("reason"),
                    )
                    for p in pruned
                ],
                max_width=0,
                indent="  ",
            )
        )
    return "\n".join(lines)


def _when(at: Any) -> str:
    if not isinstance(at, (int, float)):
        return "?"
    return time.strftime("%H:%M:%S", time.localtime(at))
