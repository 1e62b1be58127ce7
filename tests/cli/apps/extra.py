"""A second module for ``netpeer run``."""

import net


@net.connect()
def version():
    return "extra 1"
