"""A module that fails to import."""

import net


@net.connect()
def fine():
    return 1


raise RuntimeError("broken on purpose")
