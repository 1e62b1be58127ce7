"""Server test program: connections for remote-call tests."""

import time

from _common import emit, exit_cleanly_on_sigterm

import net

exit_cleanly_on_sigterm()


@net.connect()
def echo(*args, **kwargs):
    return [list(args), kwargs]


@net.connect("sized")
def make_bytes(n):
    return b"\xab" * n


@net.connect()
def fail(message):
    raise ValueError(message)


@net.connect()
async def slow(seconds):
    import trio

    await trio.sleep(seconds)
    return "slept"


emit(port=net.default_peer().port, id=net.default_peer().id)
while True:
    time.sleep(1)
