"""Publisher test program, configured only through NET_* variables.

Waits for SUBSCRIBERS subscribers of "tick", then triggers COUNT events (with
BIG of them 1 MiB large) and a final "done"; with FOREVER=1 it triggers every
millisecond until killed, reporting how long each trigger took.
"""

import os
import time

from _common import emit, exit_cleanly_on_sigterm

import net

exit_cleanly_on_sigterm()


@net.event("tick")
def tick(seq, blob=b""):
    return (seq,), {"blob": blob}


@net.event("done")
def done(count):
    return (count,), {}


want = int(os.environ.get("SUBSCRIBERS", "1"))
count = int(os.environ.get("COUNT", "1000"))
big = int(os.environ.get("BIG", "0"))
forever = os.environ.get("FOREVER") == "1"

peer = net.default_peer()
emit(port=peer.port, id=peer.id)
while len(net.info()["subscriptions"].get("tick", [])) < want:
    time.sleep(0.01)
emit(subscribed=net.info()["subscriptions"]["tick"])

if forever:
    seq = 0
    worst = 0.0
    last_report = time.monotonic()
    while True:
        seq += 1
        t0 = time.perf_counter()
        tick(seq)
        worst = max(worst, time.perf_counter() - t0)
        if time.monotonic() - last_report > 0.1:
            info = net.info()
            emit(
                seq=seq,
                worst=worst,
                subscribers=info["subscriptions"].get("tick", []),
                pruned=[p["subscriber"] for p in info["pruned"]],
            )
            last_report = time.monotonic()
        time.sleep(0.001)

blob_1mib = os.urandom(1024 * 1024)
for seq in range(1, count + 1):
    tick(seq, blob_1mib if seq <= big else b"")
done(count)
emit(sent=count)
while True:
    time.sleep(1)
