"""``netpeer peers``: the peers found, with what each one offers; ``--watch`` follows them."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import Any

import trio

from ..peer import PeerInfo
from . import _common as c
from ._format import clock, dumps, err, join_names, out, table, user_connections

HELP = "list the peers found, with their connections and events"

DESCRIPTION = """\
List the peers this machine can find (mDNS discovery when available, static
--peers/NET_PEERS, and the peers those are linked to), and ask each one for its
info: name, address, group, hub flag, links, connections and events.
With --watch, a live table (or, when the output is not a terminal, one line per
peer that comes or goes) until Ctrl-C.
"""

HEADERS = ("NAME", "ADDRESS", "GROUP", "HUB", "ID", "LINKS", "CONNECTIONS", "EVENTS", "SUBSCRIBES")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "peers",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[c.json_option(), c.client_options(), c.peer_options(daemon=False, group=False)],
    )
    p.add_argument(
        "--group",
        "-g",
        dest="only_group",
        action="append",
        metavar="G",
        help="show only the peers of group G (repeatable)",
    )
    p.add_argument("--watch", "-w", action="store_true", help="keep watching until Ctrl-C")
    p.add_argument(
        "--interval",
        type=c.positive_float,
        default=2.0,
        metavar="S",
        help="with --watch: how often to ask every peer for its info again (default 2 s)",
    )
    p.set_defaults(_main=main)
    return p


def record(peer: PeerInfo, info: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
    """What is shown of one peer (JSON form)."""
    rec: dict[str, Any] = {
        "id": peer.id,
        "name": peer.name,
        "address": peer.address,
        "host": peer.host,
        "port": peer.port,
        "group": peer.group,
        "hub": peer.hub,
    }
    if info is None:
        rec["info_error"] = error or "no answer yet"
        return rec
    links = [
        {"id": lk.get("id"), "name": lk.get("name"), "address": lk.get("address")}
        for lk in info.get("peers") or ()
        if isinstance(lk, dict)
    ]
    rec.update(
        version=info.get("version"),
        protocol=info.get("protocol"),
        pid=info.get("pid"),
        connections=info.get("connections") or {},
        events=info.get("events") or [],
        subscribed=info.get("subscribed") or [],
        subscriptions=info.get("subscriptions") or {},
        links=links,
    )
    return rec


def row(rec: dict[str, Any]) -> list[str]:
    if "info_error" in rec:
        extra = ["?", "(no info: " + str(rec["info_error"]) + ")", "", ""]
    else:
        extra = [
            str(len(rec["links"])),
            join_names(user_connections(rec["connections"])),
            join_names(rec["events"]),
            join_names(rec["subscribed"]),
        ]
    return [
        rec["name"],
        rec["address"],
        rec["group"],
        "yes" if rec["hub"] else "-",
        rec["id"][:8],
        *extra,
    ]


def render_table(records: list[dict[str, Any]]) -> str:
    if not records:
        return "(no peers)"
    return table(HEADERS, [row(r) for r in records])


def records_of(session: c.Client, groups: list[str] | None) -> list[dict[str, Any]]:
    return [
        record(p, session.infos.get(p.id), session.info_errors.get(p.id))
        for p in session.peer.peers(groups=groups)
    ]


def main(args: argparse.Namespace) -> int:
    c.configure_logging(args.log_level, default="WARNING")
    c.make_settings(args, daemon=False)  # usage errors before anything starts
    if args.watch:
        return c.run_trio(lambda: _watch(args), interrupted=c.EXIT_OK)
    return c.run_trio(lambda: _list(args))


async def _list(args: argparse.Namespace) -> int:
    async with c.client(args) as session:
        await session.settle(args.wait)
        records = records_of(session, args.only_group)
        if args.json:
            out(dumps(records, indent=2))
        else:
            out(render_table(records))
        status = c.EXIT_OK
        for address, why in session.seed_errors.items():
            err(f"netpeer peers: {address} did not answer: {why}")
            status = c.EXIT_FAILED
        if not records and not args.json:
            err("netpeer peers: no peers found" + session.hint())
        return status


async def _watch(args: argparse.Namespace) -> int:
    tty = sys.stdout.isatty() and not args.json
    async with c.client(args) as session:
        shown: dict[str, dict[str, Any]] = {}
        first_seen: dict[str, float] = {}
        last_screen = ""
        next_refresh = time.monotonic() + args.interval
        while True:
            records = records_of(session, args.only_group)
            now = time.monotonic()
            if tty:
                width = shutil.get_terminal_size().columns
                screen = "\n".join(line[:width] for line in _screen(records, args).splitlines())
                if screen != last_screen:
                    sys.stdout.write("\x1b[H\x1b[2J" + screen + "\n")
                    sys.stdout.flush()
                    last_screen = screen
            else:
                current = {r["id"]: r for r in records}
                for pid, rec in current.items():
                    first_seen.setdefault(pid, now)
                    ready = "info_error" not in rec or now - first_seen[pid] > 2.0
                    if pid not in shown and ready:
                        shown[pid] = rec
                        _line("joined", rec, args.json)
                for pid in list(shown):
                    if pid not in current:
                        _line("left", shown.pop(pid), args.json)
                        first_seen.pop(pid, None)
                for pid in list(first_seen):
                    if pid not in current:
                        del first_seen[pid]
            if now >= next_refresh:
                with trio.move_on_after(args.interval):
                    await session.refresh(timeout=min(args.interval, 3.0))
                next_refresh = time.monotonic() + args.interval
                continue
            # wake up on changes, to refresh, and to report peers whose info is late
            await session.wait_changed(min(next_refresh - now, 0.5))


def _screen(records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    where = f" in group {', '.join(args.only_group)}" if args.only_group else ""
    head = (
        f"netpeer peers --watch: {len(records)} peer{'s' if len(records) != 1 else ''}"
        f"{where}   {clock()[:8]}   (Ctrl-C to quit)"
    )
    return head + "\n\n" + render_table(records)


def _line(what: str, rec: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out(dumps({"event": what, "time": time.time(), "peer": rec}))
        return
    mark = "+" if what == "joined" else "-"
    text = f"{mark} {clock()} {rec['name']}  {rec['address']}  group={rec['group']}"
    if rec["hub"]:
        text += " hub"
    text += f"  id={rec['id'][:8]}"
    if what == "joined" and "info_error" not in rec:
        text += f"  connections: {join_names(user_connections(rec['connections']))}"
        text += f"  events: {join_names(rec['events'])}"
    elif what == "left":
        text += "  (gone)"
    out(text)
