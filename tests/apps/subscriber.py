"""Subscriber test program: prints a summary of "tick" events when "done" arrives."""

import hashlib
import threading
import time

from _common import emit, exit_cleanly_on_sigterm

import net

exit_cleanly_on_sigterm()
state = {"seqs": [], "big": 0, "digests": set()}
lock = threading.Lock()


@net.subscribe("tick")
def on_tick(seq, blob=b""):
    with lock:
        state["seqs"].append(seq)
        if len(blob) >= 1024 * 1024:
            state["big"] += 1
            state["digests"].add(hashlib.sha256(blob).hexdigest())
    if len(state["seqs"]) % 100 == 1:
        emit(received=len(state["seqs"]), last=seq)


@net.subscribe("done")
def on_done(count):
    with lock:
        seqs = list(state["seqs"])
        emit(
            done=count,
            received=len(seqs),
            in_order=seqs == sorted(seqs),
            complete=seqs == list(range(1, count + 1)),
            big=state["big"],
            distinct_big=len(state["digests"]),
        )
        state["seqs"].clear()


emit(id=net.default_peer().id, port=net.default_peer().port)
while True:
    time.sleep(1)
