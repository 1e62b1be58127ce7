"""app-net 0.6.2 (PyPI `app-net`, import name `net`): the old library.

Runs only under the app-net venv (.bench/appnet-venv), from scripts/benchmarks,
so `import net` is app-net and never the project's `net` (checked below).

Driven safely. Left alone, app-net would:
  * at `import net`: set HOST_IP = gethostbyname(gethostname()) (the machine's
    LAN address here) and bind its server there, after "pinging" ports on
    gethostname(); loop forever if its first free port is in TIME_WAIT;
  * on net.peers() / net.subscribe() without peers=: run `arp -a` through a
    shell and connect to every port of NET_PORT..+NET_PORT_RANGE on every host
    found (a LAN port scan).
So :func:`load_appnet`, before the import, makes gethostname() answer
"127.0.0.1" (HOST_IP, the bind address and the ping target all become
loopback), lets its server reuse a TIME_WAIT port, refuses every subprocess
in this process, and installs a socket guard that raises on any
connect/bind/sendto to an address that is not loopback; after the import it
replaces net.api.local_network/get_peers/find_peers_in_block with refusals
and checks that the server really listens on 127.0.0.1. Peers are given
explicitly: a subscriber asks the publisher at 127.0.0.1:PORT for its `info`
(exactly what app-net's discovery does for each host it finds) and passes the
resulting net.Peer as `peers=` to @net.subscribe, so no scan ever starts.
The driver also runs these parties under strace once per run (check
"appnet.safety") and inside a network namespace that has only `lo`.
"""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import sys
import threading
import time

from benchlib import END_SEQ, SeqChecker, free_port, latency_summary, make_end, make_payload

EVENT = "bench"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _refuse(*_a, **_k):
    raise PermissionError("bench: app-net tried to start a subprocess (its `arp -a` scan): refused")


def _refuse_scan(*_a, **_k):
    raise PermissionError("bench: app-net tried to discover peers (arp -a + LAN port scan): refused")


def _check_addr(addr) -> None:
    if isinstance(addr, tuple) and addr and isinstance(addr[0], str) and addr[0] not in _LOOPBACK:
        # '' would mean all interfaces for bind(); refuse that too
        raise PermissionError(f"bench: refused a non-loopback address {addr!r}")


def _guard_sockets() -> None:
    cls = socket.socket
    connect, connect_ex, bind, sendto = cls.connect, cls.connect_ex, cls.bind, cls.sendto

    def g_connect(self, addr):
        _check_addr(addr)
        return connect(self, addr)

    def g_connect_ex(self, addr):
        _check_addr(addr)
        return connect_ex(self, addr)

    def g_bind(self, addr):
        _check_addr(addr)
        return bind(self, addr)

    def g_sendto(self, data, *args):
        _check_addr(args[-1])
        return sendto(self, data, *args)

    cls.connect, cls.connect_ex, cls.bind, cls.sendto = g_connect, g_connect_ex, g_bind, g_sendto


def load_appnet():
    """Import app-net bound to 127.0.0.1, with its LAN discovery made impossible."""
    for k in [k for k in os.environ if k.startswith("NET_")]:
        del os.environ[k]
    os.environ["NET_PORT"] = str(free_port())
    os.environ["NET_PORT_RANGE"] = "3"
    _guard_sockets()
    subprocess.Popen._execute_child = _refuse  # every subprocess API goes through this
    os.system = _refuse
    socketserver.TCPServer.allow_reuse_address = True
    real_gethostname = socket.gethostname
    socket.gethostname = lambda: "127.0.0.1"
    try:
        import net.api

        import net
    finally:
        socket.gethostname = real_gethostname

    scripts_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    project_net = os.path.join(os.path.dirname(scripts_dir), "net") + os.sep
    if getattr(net, "__version__", None) != "0.6.2" or "site-packages" not in net.__file__:
        raise RuntimeError(f"`net` here is not app-net 0.6.2 from a venv: {net.__file__}")
    if os.path.abspath(net.__file__).startswith(project_net):
        raise RuntimeError(f"imported the project's net, not app-net: {net.__file__}")
    net.api.local_network = _refuse_scan
    net.api.get_peers = _refuse_scan
    net.api.find_peers_in_block = _refuse_scan
    me = net.Peer()
    bound = me.server.server_address[0]
    if net.HOST_IP != "127.0.0.1" or me.host != "127.0.0.1" or bound != "127.0.0.1":
        raise RuntimeError(f"app-net is not on loopback: HOST_IP={net.HOST_IP} bound={bound}")
    return net


def _explicit_peer(net, host, port):
    """A net.Peer for host:port, built the way app-net's scan builds one, minus the scan."""
    info = net.info(peer=(host, port), time_out=5)
    if not isinstance(info, dict):
        raise RuntimeError(f"app-net info from {host}:{port} failed: {info!r}")
    return net.Peer(
        host=info["host"], port=info["port"], group=info["group"], hub=info["hub"],
        subscriptions=info["subscriptions"], connections=info["connections"], flags=info["flags"],
    )


# --------------------------------------------------------------------- event trigger
def publisher(ctl, n, subscribers=1, duration=None, payload_size=None, **_):
    if payload_size:
        raise ValueError("app-net cannot carry a padded payload (JSON, no bytes, 1 KiB limit)")
    net = load_appnet()

    @net.event(EVENT)
    def bench_event(payload):
        return (payload,), {}

    me = net.Peer()
    ctl.ready(host=me.host, port=me.port)
    ctl.wait("GO")
    have = len(me.registered_subscriptions.get(EVENT, {}))
    if have != subscribers:
        raise RuntimeError(f"{have} subscribers registered, expected {subscribers}")
    limit = time.perf_counter() + duration if duration else None
    t0 = time.perf_counter()
    sent = 0
    for seq in range(n):
        bench_event(make_payload(seq))
        sent += 1
        if limit and time.perf_counter() > limit:
            break
    t1 = time.perf_counter()
    bench_event(make_end(sent))
    ctl.wait("STOP")
    ctl.result(sent=sent, send_rate=sent / (t1 - t0))


def subscriber(ctl, host, port, n, **_):
    net = load_appnet()
    chk = SeqChecker(n)
    lock = threading.Lock()  # app-net runs each delivery in its own server thread
    done = threading.Event()
    end = {}

    pub = _explicit_peer(net, host, port)

    @net.subscribe(EVENT, peers=[pub])
    def on_bench(payload, *_a, **_k):
        seq = payload["seq"]
        with lock:
            if seq >= 0:
                chk.see(seq)
            elif seq == END_SEQ:
                end["sent"] = payload["end"]
                done.set()

    ctl.ready()
    done.wait(max(ctl.time_left(), 1))
    with lock:
        res = chk.result(end.get("sent", n))
    res["end_seen"] = "sent" in end
    ctl.result(**res)


# --------------------------------------------------------------------- remote call
def server(ctl, **_):
    net = load_appnet()
    served = 0

    @net.connect("bench_echo")
    def bench_echo(payload, **_kw):  # app-net passes peer=/time_out= through
        nonlocal served
        served += 1
        return {"seq": payload["seq"], "ok": True}

    me = net.Peer()
    ctl.ready(host=me.host, port=me.port)
    ctl.wait("STOP")
    ctl.result(served=served)


def client(ctl, host, port, rounds, warmup=200, **_):
    net = load_appnet()

    @net.connect("bench_echo")
    def bench_echo(payload, **_kw):
        return {"seq": payload["seq"], "ok": True}

    clock = time.perf_counter_ns
    samples = []
    cpu0 = time.process_time()
    for i in range(warmup + rounds):
        t0 = clock()
        reply = bench_echo(make_payload(i), peer=(host, port), time_out=5)
        t1 = clock()
        if not isinstance(reply, dict) or reply.get("seq") != i:
            raise AssertionError(f"bad reply {reply!r} for {i}")
        if i >= warmup:
            samples.append(t1 - t0)
    ctl.result(**latency_summary(samples, cpu_s=time.process_time() - cpu0, calls=warmup + rounds))


if __name__ == "__main__":
    sys.exit("run me through benchlib.party (see scripts/benchmarks/README.md)")
