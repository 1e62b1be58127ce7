"""``netpeer sub EVENT``: subscribe to an event and print each one as it arrives."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import trio

from ..peer import PeerInfo
from . import _common as c
from ._format import clock, dumps, err, out, render_call_args

HELP = "subscribe to an event and print each one as it arrives"

DESCRIPTION = """\
Subscribe to EVENT on every peer found (or only on --peer P, or on the peers
of --group G) and print each event as it arrives: one line per event, or one
JSON object per line with --json. Ends after --count events, or on Ctrl-C.
"""

EPILOG = """\
examples:
  netpeer sub temperature
  netpeer sub temperature --peer worker-1 --count 10 --json
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sub",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[
            c.json_option(),
            c.client_options(wait=False),
            c.peer_options(daemon=False, group=False),
        ],
    )
    p.add_argument("event", metavar="EVENT", help="the event name")
    p.add_argument(
        "--peer",
        action="append",
        metavar="P",
        help="only events from peer P (name, id or HOST:PORT); repeatable",
    )
    p.add_argument(
        "--group",
        "-g",
        dest="only_group",
        action="append",
        metavar="G",
        help="only events from peers of group G; repeatable (default: every group)",
    )
    p.add_argument(
        "--count",
        "-n",
        type=c.positive_int,
        metavar="N",
        help="exit after N events",
    )
    p.set_defaults(_main=main)
    return p


def main(args: argparse.Namespace) -> int:
    c.configure_logging(args.log_level, default="WARNING")
    if not args.event or len(args.event) > 255:
        raise c.UsageError("EVENT must be 1..255 characters")
    addresses = [ref for ref in args.peer or () if c.is_address(ref)]
    if addresses:  # link to the peers named by address (names and ids are looked up)
        args.peers = [*(args.peers or []), addresses]
    c.make_settings(args, daemon=False)
    return c.run_trio(lambda: _sub(args), interrupted=c.EXIT_OK)


async def _sub(args: argparse.Namespace) -> int:
    event = args.event
    done = trio.Event()
    received = 0

    async def on_event(*event_args: Any, sender: PeerInfo, **kwargs: Any) -> None:
        nonlocal received
        if done.is_set():
            return
        received += 1
        try:
            show(event_args, kwargs, sender)
        except BrokenPipeError:  # the reader went away (netpeer sub ... | head -1)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            done.set()
            return
        if args.count is not None and received >= args.count:
            done.set()

    def show(event_args: tuple[Any, ...], kwargs: dict[str, Any], sender: PeerInfo) -> None:
        if args.json:
            out(
                dumps(
                    {
                        "event": event,
                        "time": time.time(),
                        "from": {"id": sender.id, "name": sender.name, "address": sender.address},
                        "args": list(event_args),
                        "kwargs": kwargs,
                    }
                )
            )
        else:
            out(
                f"[{clock()}] {event} from {sender.name} ({sender.address}): "
                f"{render_call_args(event_args, kwargs)}"
            )

    async with c.client(args) as session:
        peer = session.peer
        if args.peer:
            peer.subscribe(event, peers=args.peer)(on_event)
        elif args.only_group:
            peer.subscribe(event, groups=args.only_group)(on_event)
        else:
            # Every group: subscriptions match by group, so add one per group seen.
            covered: set[str] = set()

            def cover_groups() -> None:
                for group in {p.group for p in peer.peers()} | {peer.settings.group}:
                    if group not in covered:
                        covered.add(group)
                        peer.subscribe(event, groups=[group])(on_event)

            async def follow_groups() -> None:
                while True:
                    cover_groups()
                    await peer.wait_peers_changed()

            session.nursery.start_soon(follow_groups)
        if sys.stderr.isatty():
            err(f"netpeer sub: listening for {event!r} (Ctrl-C to stop)")
        await done.wait()
    return c.EXIT_OK
