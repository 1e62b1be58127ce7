"""The demo: three peer processes on 127.0.0.1 that find each other by mDNS.

No addresses are given: the peers discover each other on loopback only
(NET_INTERFACES=loopback), never on the machine's other interfaces. It shows
them link up, an event broadcast with a delivery report, a remote call (and the
clear error for an unknown one), then kills one with SIGKILL and shows the
publisher prune it within the heartbeat bound.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Loopback only, always: the demo must never advertise or browse on a real interface.
SAFE_ENV = {
    "NET_HOST": "127.0.0.1",
    "NET_PORT": "0",
    "NET_DISCOVERY": "mdns",
    "NET_INTERFACES": "loopback",
    "NET_HEARTBEAT_INTERVAL": "0.2",
    "NET_HEARTBEAT_TIMEOUT": "1.0",
    "PYTHONUNBUFFERED": "1",
}


def main() -> int:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NET_")}
    base.update(SAFE_ENV)
    procs: dict[str, subprocess.Popen[str]] = {}
    print("== net demo: three peers on 127.0.0.1, found by mDNS on loopback, no address given ==",
          flush=True)
    try:
        for role in ("sensor", "logger", "display"):
            procs[role] = subprocess.Popen(
                [sys.executable, str(HERE / "demo_peer.py")],
                env={**base, "NET_NAME": role, "DEMO_ROLE": role},
                stdout=subprocess.PIPE,
                text=True,
            )
        lines: list[str] = []

        def pump(p: subprocess.Popen[str]) -> None:
            assert p.stdout is not None
            for line in p.stdout:
                print(line.rstrip(), flush=True)
                lines.append(line)

        for p in procs.values():
            threading.Thread(target=pump, args=(p,), daemon=True).start()

        def wait_for(text: str, timeout: float = 20.0) -> None:
            deadline = time.monotonic() + timeout
            while not any(text in line for line in lines):
                if time.monotonic() > deadline:
                    raise SystemExit(f"demo: timed out waiting for {text!r}")
                time.sleep(0.02)

        wait_for("broadcast temperature=21.0")
        wait_for("UnknownConnection")
        print("== killing 'display' with SIGKILL (no goodbye) ==", flush=True)
        killed = time.monotonic()
        procs["display"].kill()
        sys.path.insert(0, str(HERE.parent))
        os.environ.update(SAFE_ENV)
        import net

        watcher = net.Peer("demo-watcher")
        watcher.start()
        try:
            while True:
                try:
                    info = watcher.call_sync("sensor", "info", timeout=2)
                except net.PeerNotFound:  # not discovered yet
                    time.sleep(0.05)
                    continue
                subs = info["subscriptions"].get("temperature", [])
                if "display" not in subs:
                    pruned = [p for p in info["pruned"] if p["subscriber"] == "display"]
                    reason = pruned[-1]["reason"] if pruned else "gone"
                    print(f"[   demo] sensor pruned 'display' after {time.monotonic() - killed:.2f} s "
                          f"({reason}); subscribers now {subs}", flush=True)
                    break
                if time.monotonic() - killed > 10:
                    raise SystemExit("demo: display was not pruned within 10 s")
                time.sleep(0.05)
            print("[   demo] sensor counters: " + json.dumps(info["counters"]), flush=True)
        finally:
            watcher.stop()
        print("== stopping the others with SIGTERM (they say goodbye) ==", flush=True)
        for role in ("logger", "sensor"):
            procs[role].send_signal(signal.SIGTERM)
            procs[role].wait(10)
        print("== demo done ==", flush=True)
        return 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(5)


if __name__ == "__main__":
    sys.exit(main())
