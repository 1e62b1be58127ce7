"""A module for ``netpeer run``: connections, an event and a subscription."""

import net

received: list[list[object]] = []


@net.connect()
def add(a, b):
    """Add two numbers (or concatenate two strings)."""
    return a + b


@net.connect()
def fail(message):
    raise ValueError(message)


@net.connect()
def echo(*args, **kwargs):
    return [list(args), kwargs]


@net.event("temperature")
def temperature(value, unit="C"):
    return (value,), {"unit": unit}


@net.connect()
def publish(value):
    """Trigger ``temperature`` from this peer (so ``sub`` can see the daemon publish)."""
    temperature(value)
    return True


@net.subscribe("ping")
def on_ping(*args, **kwargs):
    received.append([list(args), kwargs])


@net.connect()
def pings():
    return received
