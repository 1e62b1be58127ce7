"""``netpeer``: the daemon and command line around net.

``netpeer run`` hosts modules on a peer; ``peers``, ``info``, ``sub``,
``trigger`` and ``call`` look at and talk to the network through a temporary
peer; ``doctor`` checks the host. The commands live in ``net._cli``; see
docs/cli.md. Exit status: 0 success, 1 failure, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from ._version import __version__

EPILOG = """\
Configuration also comes from NET_* environment variables (docs/configuration.md);
flags override them. Run 'netpeer COMMAND --help' for a command's options.
Exit status: 0 success, 1 failure, 2 bad usage.
"""


def build_parser() -> argparse.ArgumentParser:
    from ._cli import COMMANDS

    parser = argparse.ArgumentParser(
        prog="netpeer",
        description="Run and inspect a network of net peers (peer-to-peer pub/sub and remote calls).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"netpeer {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = command.add_parser(subparsers)
        sub.set_defaults(_parser=sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ._cli._common import EXIT_FAILED, EXIT_INTERRUPTED, Failure, UsageError
    from ._cli._format import err
    from .errors import ConfigError, NetError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    sub: argparse.ArgumentParser = args._parser
    try:
        status: int = args._main(args)
        return status
    except (UsageError, ConfigError) as exc:
        sub.error(str(exc))  # exits 2
    except Failure as exc:
        err(f"netpeer {args.command}: {exc}")
    except NetError as exc:
        err(f"netpeer {args.command}: {exc}")
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (netpeer ... | head): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
