"""A peer for the multi-host tests, configured only through NET_* variables.

It subscribes to "news", publishes "news" every 50 ms when PUBLISH=1, calls
``whoami`` on every peer it sees once, and prints its state as JSON lines.
"""

import collections
import os
import threading
import time

from _common import emit, exit_cleanly_on_sigterm

import net

exit_cleanly_on_sigterm()
received: collections.Counter[str] = collections.Counter()
lock = threading.Lock()


@net.connect()
def whoami():
    return os.environ["NET_NAME"]


@net.subscribe("news")
def on_news(publisher, seq, *, sender):
    with lock:
        received[sender.name] += 1


@net.event("news")
def news(seq):
    return (os.environ["NET_NAME"], seq), {}


peer = net.default_peer()
emit(ready=peer.name, id=peer.id, port=peer.port, t=time.time())
publish = os.environ.get("PUBLISH") == "1"
called: set[str] = set()
last_peers = None
seq = 0
next_status = 0.0
while True:
    now = time.monotonic()
    peers = net.peers()
    names = sorted(p.name for p in peers)
    if names != last_peers:
        emit(peers=names, t=time.time())
        last_peers = names
    for p in peers if os.environ.get("CALLS", "1") == "1" else ():
        if p.id not in called:
            called.add(p.id)
            try:
                emit(called=p.name, result=p.whoami(timeout=5))
            except net.NetError as exc:
                called.discard(p.id)
                emit(call_failed=p.name, error=str(exc))
    if publish:
        seq += 1
        news(seq)
    if now >= next_status:
        info = net.info()
        with lock:
            emit(status={"received": dict(received), "subscribers": info["subscriptions"].get("news", [])},
                 t=time.time())
        next_status = now + 0.1
    time.sleep(float(os.environ.get("POLL", "0.05")))
