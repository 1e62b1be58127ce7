"""``netpeer trigger EVENT [ARGS ...]``: broadcast an event and report who received it."""

from __future__ import annotations

import argparse
from typing import Any

from . import _common as c
from ._format import dumps, err, join_names, out, render_call_args

HELP = "broadcast an event to its subscribers and report how many received it"

DESCRIPTION = """\
Broadcast EVENT with the given arguments from a temporary peer, and report
which subscribers acknowledged it.

Subscribers subscribe to every matching peer they are linked to, so the
temporary peer first finds the network and waits (up to --wait) until every
peer that handles EVENT has subscribed to it. Subscriptions match the
publisher's group by default: use --group to publish as a member of another
group. Arguments are JSON literals, anything else is a string.
"""

EPILOG = """\
examples:
  netpeer trigger temperature 21.5 --kw unit='"C"'
  netpeer trigger reload --group lab --peers 10.0.0.5:3010
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "trigger",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[c.json_option(), c.client_options(), c.peer_options(daemon=False)],
    )
    p.add_argument("event", metavar="EVENT", help="the event name")
    c.add_call_arguments(p)
    p.add_argument(
        "--timeout",
        type=c.positive_float,
        default=5.0,
        metavar="S",
        help="how long to wait for the subscribers' acknowledgements (default 5 s)",
    )
    p.set_defaults(_main=main)
    return p


def main(args: argparse.Namespace) -> int:
    c.configure_logging(args.log_level, default="WARNING")
    c.make_settings(args, daemon=False)
    event_args = [c.parse_value(a) for a in args.args]
    kwargs = c.parse_kwargs(args.kw)
    if not args.event or len(args.event) > 255:
        raise c.UsageError("EVENT must be 1..255 characters")
    return c.run_trio(lambda: _trigger(args, event_args, kwargs))


async def _trigger(args: argparse.Namespace, event_args: list[Any], kwargs: dict[str, Any]) -> int:
    event = args.event
    async with c.client(args) as session:
        peer = session.peer

        def expected() -> set[str]:
            linked = {p.id for p in peer.peers()}
            return {
                pid
                for pid, info in session.infos.items()
                if pid in linked and event in (info.get("subscribed") or ())
            }

        def ready() -> bool:
            # every peer mDNS found is linked (a subscriber may be one of them),
            # and every linked peer that handles the event has subscribed to us
            linked = {p.id for p in peer.peers()}
            return set(peer.discovered) <= linked and expected() <= set(
                peer.table.subscribers(event)
            )

        await session.settle(args.wait, mdns_minimum=1.5, ready=ready, poll=0.05)
        missing = expected() - set(peer.table.subscribers(event))
        try:
            report = await peer.trigger_with_report(event, event_args, kwargs, timeout=args.timeout)
        except (TypeError, ValueError) as exc:
            raise c.Failure(str(exc)) from None
        names = {p.id: p.name for p in peer.peers()}
        if args.json:
            out(
                dumps(
                    {
                        "event": event,
                        "args": list(report.args),
                        "kwargs": report.kwargs,
                        "delivered": [
                            {"id": p.id, "name": p.name, "address": p.address}
                            for p in report.delivered
                        ],
                        "count": len(report.delivered),
                        "failed": report.failed,
                        "pruned": report.pruned,
                        "not_subscribed": sorted(missing),
                    }
                )
            )
        else:
            shown = render_call_args(report.args, report.kwargs)
            n = len(report.delivered)
            if n:
                out(
                    f"{event}({shown}) delivered to {n} subscriber{'s' if n != 1 else ''}: "
                    + join_names(f"{p.name} ({p.address})" for p in report.delivered)
                )
            else:
                out(f"{event}({shown}) delivered to 0 subscribers")
            for pid, why in report.failed.items():
                err(f"netpeer trigger: not delivered to {names.get(pid, pid)}: {why}")
        if missing:
            err(
                f"netpeer trigger: {join_names(names.get(p, p) for p in sorted(missing))} "
                f"handle{'s' if len(missing) == 1 else ''} {event!r} but did not subscribe to "
                f"this peer within {args.wait:g} s (their subscription may be limited to other "
                "groups or peers; see --group)"
            )
        if not report.delivered and not peer.peers():
            err("netpeer trigger: no peers found" + session.hint())
        return c.EXIT_FAILED if report.failed else c.EXIT_OK
