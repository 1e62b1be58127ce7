"""``netpeer``: the daemon and command line around net."""

from __future__ import annotations

import argparse
import sys

from ._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netpeer",
        description="Run and inspect a network of net peers (peer-to-peer pub/sub and remote calls).",
        epilog="Configuration also comes from NET_* environment variables; see docs/configuration.md.",
    )
    parser.add_argument("--version", action="version", version=f"netpeer {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0  # pragma: no cover - subcommands are added by later work


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
