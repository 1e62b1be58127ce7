"""``netpeer call PEER CONNECTION [ARGS ...]``: run a connection on a peer, print the result."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import CallTimeout, NetError, RemoteError, UnknownConnection
from . import _common as c
from ._format import dumps, err, out, render

HELP = "call a connection on a peer and print its result"

DESCRIPTION = """\
Run CONNECTION on PEER with the given arguments and print what it returns.
Arguments are JSON literals (1, 2.5, true, null, "text", [1, 2], {"a": 1});
anything that is not valid JSON is passed as a string. A remote exception is
printed with the remote traceback, and the exit status is 1.

PEER is a name, an id (or a unique prefix of at least 4 hex digits) or
HOST:PORT; HOST:PORT is contacted directly, the others are looked up first.
"""

EPILOG = """\
examples:
  netpeer call 127.0.0.1:3010 add 1 2
  netpeer call worker-1 resize '"photo.jpg"' --kw width=200 --timeout 5
  netpeer call worker-1 info --json
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "call",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[c.json_option(), c.client_options(), c.peer_options(daemon=False)],
    )
    p.add_argument("peer", metavar="PEER", help="name, id (or id prefix) or HOST:PORT")
    p.add_argument("connection", metavar="CONNECTION", help="the connection to run")
    c.add_call_arguments(p)
    p.add_argument(
        "--timeout",
        type=c.positive_float,
        default=None,
        metavar="S",
        help="how long to wait for the result (default NET_CALL_TIMEOUT, 30 s)",
    )
    p.set_defaults(_main=main)
    return p


def main(args: argparse.Namespace) -> int:
    c.configure_logging(args.log_level, default="WARNING")
    c.make_settings(args, daemon=False)
    call_args = [c.parse_value(a) for a in args.args]
    kwargs = c.parse_kwargs(args.kw)
    return c.run_trio(lambda: _call(args, call_args, kwargs))


async def _call(args: argparse.Namespace, call_args: list[Any], kwargs: dict[str, Any]) -> int:
    async with c.client(args) as session:
        target = await session.locate(args.peer, args.wait)
        try:
            result = await session.peer.call(
                target, args.connection, *call_args, timeout=args.timeout, **kwargs
            )
        except RemoteError as exc:
            if args.json:
                out(
                    dumps(
                        {
                            "error": {
                                "type": exc.type_name,
                                "message": exc.remote_message,
                                "traceback": exc.remote_traceback,
                                "peer": exc.peer,
                            }
                        }
                    )
                )
            else:
                err(
                    f"netpeer call: {args.connection} raised {exc.type_name} on {exc.peer}: {exc.remote_message}"
                )
                if exc.remote_traceback:
                    err("--- remote traceback ---")
                    err(exc.remote_traceback.rstrip())
            return c.EXIT_FAILED
        except UnknownConnection as exc:
            raise c.Failure(str(exc)) from None
        except CallTimeout as exc:
            raise c.Failure(str(exc)) from None
        except TypeError as exc:  # arguments msgpack cannot carry
            raise c.UsageError(str(exc)) from None
        except NetError as exc:
            raise c.Failure(f"{args.peer}: {exc}") from None
        if args.json:
            out(dumps({"result": result}))
        else:
            out(render(result, top=True))
        return c.EXIT_OK
