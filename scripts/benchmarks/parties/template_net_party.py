"""TEMPLATE for parties/net_party.py — copy it there and fill in the TODO(net) parts.

While parties/net_party.py does not exist, the net rows of the table say
"not yet available". Once it exists, scripts/bench makes the project's .venv
(scripts/_setup.sh) and runs these roles with /work/main/.venv/bin/python,
from scripts/benchmarks (so `benchlib` imports; `net` is the project's,
installed in .venv). A role that is not defined (or not callable) leaves its
rows "not yet available"; a role that raises makes its row FAILED, with the
party's stderr tail in the output and the whole log in .bench/logs/.

Every role gets ``ctl`` (benchlib.Ctl) and keyword params; always accept
``**_`` so new params never break a role. Everything must stay on 127.0.0.1
(the driver runs inside a network namespace that has only `lo` anyway).
Every wait must be bounded: use ``ctl.time_left()`` / ``ctl.wait()`` (which
raise or return at the deadline); the runner's watchdog kills the process
5 s after ``time_limit`` whatever happens.

Contract by scenario kind (see scenarios.py):

pubsub  publisher(ctl, n, subscribers, duration, payload_size=None, **_)
            set up; ctl.ready(host=..., port=...)   # this dict is merged into
                                                    # every subscriber's params
            ctl.wait("GO")
            make sure `subscribers` subscribers are attached (bounded wait)
            send make_payload(seq, payload_size) for seq in range(n), stopping
            early after `duration` s; then make_end(sent) to every subscriber
            ctl.wait("STOP"); shut down cleanly
            ctl.result(sent=sent, send_rate=sent / seconds, **anything_else)
        subscriber(ctl, host, port, n, index, **_)
            set up and subscribe; return from ready only once an event
            published from now on is sure to arrive: ctl.ready()
            for every event: seq >= 0 -> chk.see(seq); seq == END_SEQ -> stop
            ctl.result(**chk.result(sent_from_end_marker), end_seen=True)
pair    server(ctl, **_): ctl.ready(host=..., port=...); serve until
            ctl.wait("STOP"); ctl.result(served=...)        # keys get "server_"
        client(ctl, host, port, rounds, warmup=200, **_): time each round
            trip with time.perf_counter_ns(); ctl.result(**latency_summary(ns))
single  main role (named by the scenario's roles={"main": ...}), e.g.
        idle_rss(ctl, **_): start a peer, let it settle, ctl.result(**rss_kib())

Memory: net.memory.per-1000-subs is a pair with roles subs_server /
subs_client; its figure is ``server_growth_kib``: the server reports
``growth_kib`` = RSS after the client's subscriptions - RSS before, per 1000.
"""

from __future__ import annotations

import time

from benchlib import END_SEQ, SeqChecker, latency_summary, make_end, make_payload, rss_kib

# ASYNC_LIB = "trio"  # async roles run under trio (the default) -- or write sync roles


def _todo(what: str):
    raise NotImplementedError(f"TODO(net): {what}")


# --------------------------------------------------------------------- pub/sub
def publisher(ctl, n, subscribers=1, duration=None, payload_size=None, **_):
    peer = _todo("start a net peer on 127.0.0.1 (static peers, no LAN) and an @event 'bench'")
    ctl.ready(host="127.0.0.1", port=peer.port)
    ctl.wait("GO")
    _todo("wait (bounded by ctl.time_left()) until `subscribers` subscribers are attached")
    emit = _todo("the function that emits the 'bench' event with one payload dict")
    limit = time.perf_counter() + duration if duration else None
    t0 = time.perf_counter()
    sent = 0
    for seq in range(n):
        emit(make_payload(seq, payload_size))
        sent += 1
        if limit and not seq & 255 and time.perf_counter() > limit:
            break
    t1 = time.perf_counter()
    emit(make_end(sent))
    ctl.wait("STOP")
    _todo("stop the peer cleanly")
    ctl.result(sent=sent, send_rate=sent / (t1 - t0))


def subscriber(ctl, host, port, n, **_):
    chk = SeqChecker(n)
    end = {}

    def on_bench(payload):  # called for every event
        seq = payload["seq"]
        if seq >= 0:
            chk.see(seq)
        elif seq == END_SEQ:
            end["sent"] = payload["end"]

    _todo(f"start a peer, subscribe on_bench to 'bench' on {host}:{port}, wait for the ack")
    ctl.ready()
    while "sent" not in end and ctl.time_left() > 0:
        time.sleep(0.01)  # TODO(net): or wait on an Event set by on_bench
    ctl.result(**chk.result(end.get("sent", n)), end_seen="sent" in end)


# --------------------------------------------------------------------- remote call
def server(ctl, **_):
    peer = _todo("start a peer with an @connect 'bench_echo' returning {'seq': payload['seq']}")
    ctl.ready(host="127.0.0.1", port=peer.port)
    ctl.wait("STOP")
    ctl.result(served=0)


def client(ctl, host, port, rounds, warmup=200, **_):
    call = _todo(f"a function that calls bench_echo(payload) on {host}:{port}")
    samples = []
    cpu0 = time.process_time()
    for i in range(warmup + rounds):
        t0 = time.perf_counter_ns()
        reply = call(make_payload(i))
        t1 = time.perf_counter_ns()
        assert reply["seq"] == i
        if i >= warmup:
            samples.append(t1 - t0)
    ctl.result(**latency_summary(samples, cpu_s=time.process_time() - cpu0, calls=warmup + rounds))


# --------------------------------------------------------------------- memory
def idle_rss(ctl, settle=2.0, **_):
    _todo("start a peer and leave it idle")
    time.sleep(settle)
    ctl.result(**rss_kib())


def subs_server(ctl, subscriptions=1000, **_):
    peer = _todo("start the publisher peer")
    before = rss_kib()["rss_kib"]
    ctl.ready(host="127.0.0.1", port=peer.port)
    ctl.wait("STOP")  # the client has made (and seen acked) its subscriptions by now
    after = rss_kib()["rss_kib"]
    ctl.result(growth_kib=(after - before) * 1000 / subscriptions, rss_kib=after)


def subs_client(ctl, host, port, subscriptions=1000, **_):
    _todo(f"make {subscriptions} subscriptions on {host}:{port} and wait until all are acked")
    ctl.result(subscriptions=subscriptions)
