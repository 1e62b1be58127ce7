"""Discovery timings in namespaces; see scripts/discovery_bench. Prints a table and JSON."""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.netns import Host, make_hosts  # noqa: E402
from tests.procs import APPS, Proc, base_env  # noqa: E402

HEARTBEAT_TIMEOUT = 1.0


def start(host: Host, name: str, procs: list[Proc]) -> Proc:
    env = base_env(NET_NAME=name, NET_DISCOVERY="mdns", NET_HOST="0.0.0.0", NET_PORT=3010,
                   NET_HEARTBEAT_INTERVAL=0.2, NET_HEARTBEAT_TIMEOUT=HEARTBEAT_TIMEOUT,
                   POLL=0.005, CALLS=0)
    proc = Proc(["ip", "netns", "exec", host.ns, sys.executable, str(APPS / "mesh_peer.py")], env, name)
    procs.append(proc)
    return proc


def peers_line(proc: Proc, cond: Any, timeout: float = 20.0) -> dict[str, Any]:
    return proc.expect(lambda o: "peers" in o and cond(o["peers"]), timeout)


def one_round() -> dict[str, float]:
    procs: list[Proc] = []
    out: dict[str, float] = {}
    try:
        with make_hosts(8) as hosts:
            a = start(hosts[0], "a", procs)
            a.expect_key("ready")
            b = start(hosts[1], "b", procs)
            ready = b.expect_key("ready")["t"]
            seen_by_a = peers_line(a, lambda p: "b" in p)["t"]
            seen_by_b = peers_line(b, lambda p: "a" in p)["t"]
            out["new peer linked (both ways), s"] = max(seen_by_a, seen_by_b) - ready
            killed = time.time()
            b.signal(signal.SIGKILL)
            out["killed peer detected, s"] = peers_line(a, lambda p: "b" not in p)["t"] - killed
            c = start(hosts[2], "c", procs)
            c.expect_key("ready")
            peers_line(a, lambda p: "c" in p)
            cut = time.time()
            hosts[2].link_down()
            out["cut link detected, s"] = peers_line(a, lambda p: "c" not in p)["t"] - cut
            hosts[2].link_up()
            back = time.time()
            out["cut link recovered, s"] = peers_line(a, lambda p: "c" in p)["t"] - back
            for p in procs:
                p.kill()
            procs.clear()
            t0 = time.time()
            mesh = [start(hosts[i], f"m{i}", procs) for i in range(8)]
            done = [peers_line(p, lambda names: len(names) == 7, timeout=30)["t"] for p in mesh]
            out["8-peer full mesh from spawn, s"] = max(done) - t0
            starts = [p.seen(lambda o: "ready" in o)["t"] for p in mesh]
            out["8-peer full mesh after last ready, s"] = max(done) - max(starts)
    finally:
        for p in procs:
            p.kill()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", default="bench-results/discovery.json")
    args = parser.parse_args()
    rounds = [one_round() for _ in range(args.reps)]
    print(f"{'measure':40} {'median':>8} {'min':>8} {'max':>8}")
    summary = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        print(f"{key:40} {statistics.median(values):8.3f} {min(values):8.3f} {max(values):8.3f}")
    print(f"(heartbeat timeout {HEARTBEAT_TIMEOUT} s, interval 0.2 s; {args.reps} rounds)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
