"""The registry of scenarios: THE place to add a row to the benchmark table.

A scenario names a *party module* (parties/<something>.py), the interpreter
that runs it, a *kind* that says how the driver wires its processes together,
and the parameters passed to every role. See README.md for the contract a
party module follows; the kinds are:

  pubsub  roles "publisher" (1 process) and "subscriber" (``subscribers``
          processes). Driver: start publisher -> its READY info is merged
          into every subscriber's params -> start subscribers -> all READY
          -> GO to the publisher -> every subscriber's RESULT -> STOP to the
          publisher -> its RESULT. Figure: the median per-subscriber ``rate``.
  pair    roles "server" and "client". Driver: start server -> READY info
          merged into the client's params -> client RESULT -> STOP to the
          server -> its RESULT (keys prefixed ``server_``).
  single  role "main": one process, its RESULT.

Publishers stop at ``n`` messages or after ``duration`` seconds, whichever
comes first (the driver sets ``duration`` to 3 s, 1 s with --quick, unless the
scenario gives one), and then send an END marker that carries the count sent.

``roles`` renames a kind's roles to functions of the module (e.g.
``{"main": "idle_rss"}``). ``params`` go to every role as keyword arguments
(plus what the driver adds: ``time_limit``, ``subscribers``, ``index``, the
READY info, the services' addresses); ``quick`` overrides them for --quick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Interpreters, by name. Paths come from scripts/bench (--python NAME=PATH).
#   bench    .bench/venv: pyzmq, nats-py, msgpack, trio (the driver runs here too)
#   appnet   .bench/appnet-venv: app-net 0.6.2 (import name `net`) and nothing else
#   project  /work/main/.venv: the project's own `net` (made by scripts/_setup.sh)
INTERPRETERS = ("bench", "appnet", "project")

KIND_ROLES = {
    "pubsub": ("publisher", "subscriber"),
    "pair": ("server", "client"),
    "single": ("main",),
}


@dataclass
class Scenario:
    name: str  # unique, dotted: "<system>.<test>[.<variant>]"; --only takes these (or prefixes)
    label: str  # what the row means, in words
    system: str  # "pyzmq", "NATS", "app-net", "limit", "net"
    group: str  # table section: alternatives | limits | net | memory | scale
    kind: str  # pubsub | pair | single  (see above)
    party: str  # module under scripts/benchmarks, e.g. "parties.zmq_party"
    python: str = "bench"  # one of INTERPRETERS
    params: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)  # overrides of params for --quick
    roles: dict = field(default_factory=dict)  # kind role -> function name in the module
    subscribers: int = 1  # pubsub: number of subscriber processes
    metric: str = "rate"  # the key of the headline figure in the merged RESULT
    unit: str = "msgs/s"  # msgs/s | us | KiB | ops/s
    baseline: str | None = None  # scenario the ratio is taken against
    services: tuple = ()  # ("nats-server",): started by the driver for each run, on 127.0.0.1
    needs_check: str | None = None  # a safety check that must pass first (see CHECKS)
    max_reps: int | None = None  # cap on repetitions (heavy scenarios)
    time_limit: float = 60.0  # seconds for each process of one run (quick: 30)
    note: str = ""  # printed under the table

    def role(self, kind_role: str) -> str:
        return self.roles.get(kind_role, kind_role)

    @property
    def higher_is_better(self) -> bool:
        return self.unit not in ("us", "KiB")


THROUGHPUT_BASE = "zmq.pubsub.1"
LATENCY_BASE = "zmq.reqrep"

_N = 200_000  # messages per throughput run (~1-2 s here)
_Q = 20_000  # ... with --quick
_R = 5_000  # round trips per latency run
_RQ = 1_000  # ... with --quick

SCENARIOS: list[Scenario] = [
    # ---------------------------------------------------------------- pyzmq
    Scenario(
        "zmq.pubsub.1", "pyzmq PUB/SUB, 1 subscriber, unbounded HWM (no loss)",
        "pyzmq", "alternatives", "pubsub", "parties.zmq_party",
        params={"n": _N, "hwm": "unbounded"}, quick={"n": _Q},
        baseline=THROUGHPUT_BASE,
    ),
    Scenario(
        "zmq.pubsub.1.default-hwm", "pyzmq PUB/SUB, 1 subscriber, default HWM (1000)",
        "pyzmq", "alternatives", "pubsub", "parties.zmq_party",
        params={"n": _N, "hwm": "default"}, quick={"n": _Q},
        baseline=THROUGHPUT_BASE,
        note="zmq.pubsub.1.default-hwm: received rate; PUB drops silently what exceeds the HWM"
             " (see its loss).",
    ),
    Scenario(
        "zmq.pubsub.4", "pyzmq PUB/SUB, 4 subscribers, unbounded HWM (per sub)",
        "pyzmq", "alternatives", "pubsub", "parties.zmq_party", subscribers=4,
        params={"n": _N, "hwm": "unbounded"}, quick={"n": _Q},
        baseline="zmq.pubsub.4",
    ),
    Scenario(
        "zmq.reqrep", "pyzmq REQ/REP round trip",
        "pyzmq", "alternatives", "pair", "parties.zmq_party",
        params={"rounds": _R}, quick={"rounds": _RQ},
        metric="p50_us", unit="us", baseline=LATENCY_BASE,
    ),
    # ---------------------------------------------------------------- NATS
    Scenario(
        "nats.pubsub.1", "nats-py + nats-server pub/sub, 1 subscriber",
        "NATS", "alternatives", "pubsub", "parties.nats_party",
        params={"n": _N}, quick={"n": _Q}, services=("nats-server",),
        baseline=THROUGHPUT_BASE,
    ),
    Scenario(
        "nats.pubsub.4", "nats-py + nats-server pub/sub, 4 subscribers (per sub)",
        "NATS", "alternatives", "pubsub", "parties.nats_party", subscribers=4,
        params={"n": _N}, quick={"n": _Q}, services=("nats-server",),
        baseline="zmq.pubsub.4",
    ),
    Scenario(
        "nats.reqrep", "nats-py request/reply through nats-server",
        "NATS", "alternatives", "pair", "parties.nats_party",
        params={"rounds": _R}, quick={"rounds": _RQ}, services=("nats-server",),
        metric="p50_us", unit="us", baseline=LATENCY_BASE,
    ),
    # ---------------------------------------------------------------- app-net 0.6.2
    Scenario(
        "appnet.trigger.1", "app-net 0.6.2 @net.event trigger, 1 subscriber",
        "app-net", "alternatives", "pubsub", "parties.appnet_party", python="appnet",
        params={"n": 20_000, "duration": 2.0}, quick={"n": 2_000, "duration": 0.5},
        needs_check="appnet.safety", baseline=THROUGHPUT_BASE,
        note="app-net: peers given explicitly on 127.0.0.1 (its arp -a / LAN scan is patched out"
             " and refused), JSON on the wire, one TCP connection and thread per trigger/call.",
    ),
    Scenario(
        "appnet.call", "app-net 0.6.2 @net.connect remote call",
        "app-net", "alternatives", "pair", "parties.appnet_party", python="appnet",
        params={"rounds": _R}, quick={"rounds": _RQ},
        needs_check="appnet.safety", metric="p50_us", unit="us", baseline=LATENCY_BASE,
    ),
    # ---------------------------------------------------------------- limits
    Scenario(
        "limit.msgpack", "msgpack packb+unpackb of the payload, one process",
        "limit", "limits", "single", "parties.raw_party", roles={"main": "codec"},
        params={"iterations": 500_000}, quick={"iterations": 50_000},
        unit="ops/s", baseline=None,
    ),
    Scenario(
        "limit.trio.stream.batched", "trio TCP stream, msgpack frames, 64 KiB send_all",
        "limit", "limits", "pubsub", "parties.raw_party",
        params={"n": 1_000_000, "io": "trio", "batch": 65536}, quick={"n": 100_000},
        baseline=THROUGHPUT_BASE,
    ),
    Scenario(
        "limit.trio.stream.per-message", "trio TCP stream, one send_all per message",
        "limit", "limits", "pubsub", "parties.raw_party",
        params={"n": _N, "io": "trio", "batch": 0}, quick={"n": _Q},
        baseline=THROUGHPUT_BASE,
    ),
    Scenario(
        "limit.trio.reqrep", "request/reply on one open trio connection",
        "limit", "limits", "pair", "parties.raw_party",
        params={"rounds": _R, "io": "trio"}, quick={"rounds": _RQ},
        metric="p50_us", unit="us", baseline=LATENCY_BASE,
    ),
    Scenario(
        "limit.socket.stream.batched", "blocking socket stream, msgpack frames, 64 KiB sendall",
        "limit", "limits", "pubsub", "parties.raw_party",
        params={"n": 1_000_000, "io": "socket", "batch": 65536}, quick={"n": 100_000},
        baseline=THROUGHPUT_BASE,
    ),
    Scenario(
        "limit.socket.reqrep", "request/reply on one open blocking socket",
        "limit", "limits", "pair", "parties.raw_party",
        params={"rounds": _R, "io": "socket"}, quick={"rounds": _RQ},
        metric="p50_us", unit="us", baseline=LATENCY_BASE,
    ),
    # ---------------------------------------------------------------- net (the lead fills
    # parties/net_party.py in; until then these rows say "not yet available")
    Scenario(
        "net.pubsub.1", "net trio API: await peer.trigger -> 1 async subscriber",
        "net", "net", "pubsub", "parties.net_party", python="project",
        params={"n": _N}, quick={"n": _Q}, baseline=THROUGHPUT_BASE,
    ),
    Scenario(
        "net.pubsub.1.sync", "net sync face: @peer.event call -> 1 plain-handler subscriber",
        "net", "net", "pubsub", "parties.net_party", python="project",
        roles={"publisher": "publisher_sync", "subscriber": "subscriber_sync"},
        params={"n": _N}, quick={"n": _Q}, baseline=THROUGHPUT_BASE,
    ),
    Scenario(
        "net.pubsub.4", "net trio API -> 4 async subscribers (per sub)",
        "net", "net", "pubsub", "parties.net_party", python="project", subscribers=4,
        params={"n": _N}, quick={"n": _Q}, baseline="zmq.pubsub.4",
    ),
    Scenario(
        "net.pubsub.4.sync", "net sync face -> 4 plain-handler subscribers (per sub)",
        "net", "net", "pubsub", "parties.net_party", python="project", subscribers=4,
        roles={"publisher": "publisher_sync", "subscriber": "subscriber_sync"},
        params={"n": _N}, quick={"n": _Q}, baseline="zmq.pubsub.4",
    ),
    Scenario(
        "net.call", "net trio API: await peer.call -> async @connect, round trip",
        "net", "net", "pair", "parties.net_party", python="project",
        params={"rounds": _R}, quick={"rounds": _RQ},
        metric="p50_us", unit="us", baseline=LATENCY_BASE,
    ),
    Scenario(
        "net.call.sync", "net sync face: fn(peer=...) -> plain @connect, round trip",
        "net", "net", "pair", "parties.net_party", python="project",
        roles={"server": "server_sync", "client": "client_sync"},
        params={"rounds": _R}, quick={"rounds": _RQ},
        metric="p50_us", unit="us", baseline=LATENCY_BASE,
    ),
    # memory: slots for net only (the alternatives are not measured here)
    Scenario(
        "net.memory.idle-rss", "net: RSS of an idle, started peer",
        "net", "memory", "single", "parties.net_party", python="project",
        roles={"main": "idle_rss"}, metric="rss_kib", unit="KiB",
    ),
    Scenario(
        "net.memory.idle-rss.async", "net: RSS of an idle peer in trio code (no extra thread)",
        "net", "memory", "single", "parties.net_party", python="project",
        roles={"main": "idle_rss_async"}, metric="rss_kib", unit="KiB",
    ),
    Scenario(
        "net.memory.per-1000-subs", "net: publisher RSS growth per 1000 subscriptions",
        "net", "memory", "pair", "parties.net_party", python="project",
        roles={"server": "subs_server", "client": "subs_client"},
        params={"subscriptions": 1000}, metric="server_growth_kib", unit="KiB",
    ),
    # ---------------------------------------------------------------- scale (pyzmq gives
    # the baseline; net rows are hooks for the lead)
    Scenario(
        "zmq.scale.50-subscribers", "pyzmq PUB/SUB, 50 subscriber processes (per sub)",
        "pyzmq", "scale", "pubsub", "parties.zmq_party", subscribers=50,
        params={"n": 20_000, "hwm": "unbounded", "ready_timeout": 60},
        quick={"n": 2_000}, baseline="zmq.scale.50-subscribers", max_reps=3,
    ),
    Scenario(
        "zmq.scale.64KiB", "pyzmq PUB/SUB, 64 KiB events, 1 subscriber",
        "pyzmq", "scale", "pubsub", "parties.zmq_party",
        params={"n": 5_000, "hwm": "unbounded", "payload_size": 65536},
        quick={"n": 500}, baseline="zmq.scale.64KiB", max_reps=3,
    ),
    Scenario(
        "zmq.scale.1MiB", "pyzmq PUB/SUB, 1 MiB events, 1 subscriber",
        "pyzmq", "scale", "pubsub", "parties.zmq_party",
        params={"n": 300, "hwm": "unbounded", "payload_size": 1 << 20},
        quick={"n": 50}, baseline="zmq.scale.1MiB", max_reps=3,
    ),
    Scenario(
        "net.scale.50-subscribers", "net: 50 subscriber processes on one publisher (per sub)",
        "net", "scale", "pubsub", "parties.net_party", python="project", subscribers=50,
        params={"n": 20_000, "ready_timeout": 60}, quick={"n": 2_000},
        baseline="zmq.scale.50-subscribers", max_reps=3,
    ),
    Scenario(
        "net.scale.64KiB", "net: 64 KiB events, 1 subscriber",
        "net", "scale", "pubsub", "parties.net_party", python="project",
        params={"n": 5_000, "payload_size": 65536}, quick={"n": 500},
        baseline="zmq.scale.64KiB", max_reps=3,
    ),
    Scenario(
        "net.scale.1MiB", "net: 1 MiB events, 1 subscriber",
        "net", "scale", "pubsub", "parties.net_party", python="project",
        params={"n": 300, "payload_size": 1 << 20}, quick={"n": 50},
        baseline="zmq.scale.1MiB", max_reps=3,
    ),
]

# Safety checks, run once (before any scenario that names them in needs_check).
# "appnet.safety": the app-net publisher, subscriber, server and client run a
# short trigger and call session under strace; every connect/bind/sendto must
# name 127.0.0.1 (or ::1 / a unix socket) and no process may be executed.
CHECKS = {
    "appnet.safety": ("appnet.trigger.1", "appnet.call"),
}

GROUP_ORDER = ("alternatives", "limits", "net", "memory", "scale")


def by_name() -> dict[str, Scenario]:
    names = [s.name for s in SCENARIOS]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate scenario names: {sorted(dup)}")
    return {s.name: s for s in SCENARIOS}
