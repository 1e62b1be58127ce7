"""The ``netpeer`` subcommands (one module each) and what they share.

``net.cli`` builds the parser from them; each module has ``add_parser`` and a
``main(args) -> exit status``.
"""

from . import call, doctor, info, peers, run, sub, trigger

COMMANDS = (run, peers, info, sub, trigger, call, doctor)

__all__ = ["COMMANDS"]
