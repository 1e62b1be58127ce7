"""A stand-alone discovery process for tests: runs MdnsDiscovery, prints JSON lines.

    python tests/discovery/agent.py --interfaces loopback --name alpha --port 4000

stdout, one JSON object per line (``t`` is ``time.monotonic()``, comparable
between processes on one machine):

    {"event": "started", "t": ..., "peer_id": "...", "addresses": [...]}
    {"event": "found", "t": ..., "peer": {FoundPeer fields}}
    {"event": "lost", "t": ..., "peer_id": "..."}
    {"event": "stopped", "t": ...}          # after SIGTERM/SIGINT: goodbyes sent

Stops cleanly on SIGTERM or SIGINT, when its parent dies, or after
``--max-seconds``. SIGKILL leaves no goodbye, on purpose (tests check that).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import secrets
import signal
import sys
import time
from typing import Any

import trio

from net.discovery._interfaces import parse_interfaces
from net.discovery._mdns import Advert, FoundPeer, MdnsDiscovery


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")
    sys.stdout.flush()


async def watch_parent(parent: int, scope: trio.CancelScope) -> None:
    while os.getppid() == parent:
        await trio.sleep(0.2)
    scope.cancel()


async def watch_signals(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def main(args: argparse.Namespace) -> None:
    advert = Advert(
        peer_id=args.peer_id or secrets.token_hex(16),
        name=args.name,
        group=args.group,
        hub=args.hub,
        port=args.port,
        protocol_version=args.protocol_version,
    )
    discovery = MdnsDiscovery(advert, parse_interfaces(args.interfaces))

    def on_found(peer: FoundPeer) -> None:
        emit("found", peer=dataclasses.asdict(peer))

    def on_lost(peer_id: str) -> None:
        emit("lost", peer_id=peer_id)

    with trio.move_on_after(args.max_seconds) as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_signals, scope)
            nursery.start_soon(watch_parent, os.getppid(), scope)
            await nursery.start(discovery.run, on_found, on_lost)
            emit("started", peer_id=advert.peer_id, addresses=discovery.advertised_addresses)
    emit("stopped")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--interfaces", default="loopback", help="NET_INTERFACES value")
    p.add_argument("--name", default="agent")
    p.add_argument("--group", default="test")
    p.add_argument("--hub", action="store_true")
    p.add_argument("--port", type=int, default=4000)
    p.add_argument("--protocol-version", type=int, default=1)
    p.add_argument("--peer-id", default=None)
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--debug", action="store_true", help="debug logging on stderr")
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    logging.basicConfig(
        level=logging.DEBUG if arguments.debug else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if arguments.debug:
        logging.getLogger("zeroconf").setLevel(logging.DEBUG)
    trio.run(main, arguments)
