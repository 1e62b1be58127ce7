"""Helpers shared by every party process. Standard library only.

A *party* is one OS process in a benchmark (a publisher, a subscriber, a
server, a client...). It is started by the driver (run.py) as

    <interpreter> -m benchlib.party <module> <role> '<json params>'

with the working directory set to scripts/benchmarks, and talks to the driver
through a tiny line protocol (see :class:`Ctl`):

  party -> driver (stdout):  ``@@READY {json}``   set up; here is how to reach me
                             ``@@RESULT {json}``  my figures (a flat dict)
  driver -> party (stdin):   ``GO``               start sending / measuring
                             ``STOP``             finish up, report, exit

Anything else a party (or a library it uses) prints goes to the log, never
into the figures. This module must import under every interpreter a party may
run with (the bench venv, the app-net venv, the project's .venv): stdlib only.
"""

from __future__ import annotations

import json
import math
import os
import resource
import select
import socket
import sys
import time

__all__ = [
    "END_SEQ",
    "WARMUP_SEQ",
    "Ctl",
    "SeqChecker",
    "free_port",
    "latency_summary",
    "make_end",
    "make_payload",
    "make_warmup",
    "rss_kib",
]

# Sequence numbers below zero are control messages in the data stream.
WARMUP_SEQ = -2  # sent before GO (e.g. so a zmq subscriber knows it is attached); ignored
END_SEQ = -1  # sent after the data; carries "end": number of data messages sent

_NAME = "sensor-01"
_VALUES = [1.5, 2.5, 3.5]
_TAG = "abcdefghij"
_UNIT = "degrees-C"


def make_payload(seq: int, size: int | None = None) -> dict:
    """The standard message: about 100 bytes of msgpack (98 to 102, as seq grows).

    With ``size`` (bytes), a ``blob`` field of bytes pads the packed message to
    about that size: for the 64 KiB / 1 MiB scenarios. Parties that cannot
    carry bytes (JSON) should say so rather than change the payload.
    """
    msg = {
        "seq": seq,
        "ts": time.time(),
        "name": _NAME,
        "values": _VALUES,
        "tag": _TAG,
        "unit": _UNIT,
    }
    if size is not None and size > 112:
        msg["blob"] = b"\x00" * (size - 112)
    return msg


def make_end(sent: int) -> dict:
    return {"seq": END_SEQ, "end": sent}


def make_warmup() -> dict:
    return {"seq": WARMUP_SEQ}


class SeqChecker:
    """Checks every sequence number a receiver sees.

    ``see(seq)`` is on the hot path of every receiver, so it is kept lean. It
    counts duplicates and late (reordered) messages; losses are known at the
    end, from the END marker's count (or the expected count).
    """

    __slots__ = ("dups", "expected", "first", "highest", "last", "received", "reordered", "seen")

    def __init__(self, capacity: int) -> None:
        self.seen = bytearray(capacity + 1)
        self.received = 0  # data messages, duplicates included
        self.dups = 0
        self.reordered = 0
        self.highest = -1
        self.first = 0.0
        self.last = 0.0

    def see(self, seq: int) -> None:
        now = time.perf_counter()
        if not self.received:
            self.first = now
        self.last = now
        self.received += 1
        seen = self.seen
        if seq >= len(seen):
            seen.extend(bytes(seq + 1 - len(seen)))
        if seen[seq]:
            self.dups += 1
            return
        seen[seq] = 1
        if seq > self.highest:
            self.highest = seq
        else:
            self.reordered += 1

    def result(self, sent: int | None) -> dict:
        unique = self.received - self.dups
        if sent is None:
            sent = self.highest + 1
        span = self.last - self.first
        rate = (self.received - 1) / span if self.received > 1 and span > 0 else 0.0
        return {
            "rate": rate,
            "received": self.received,
            "sent": sent,
            "lost": max(sent - unique, 0),
            "loss_pct": 100.0 * max(sent - unique, 0) / sent if sent else 0.0,
            "reordered": self.reordered,
            "dups": self.dups,
            "span_s": span,
        }


def latency_summary(samples_ns: list[int], cpu_s: float | None = None, calls: int = 0) -> dict:
    """p50/p90/p99/mean/min/max in microseconds (nearest-rank percentiles); with
    ``cpu_s``, the calling process's CPU time (all its threads) per call."""
    s = sorted(samples_ns)
    n = len(s)
    if not n:
        return {"rounds": 0}

    def pct(p: float) -> float:
        k = max(0, min(n - 1, math.ceil(p / 100.0 * n) - 1))
        return s[k] / 1000.0

    return {
        "rounds": n,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "mean_us": sum(s) / n / 1000.0,
        "min_us": s[0] / 1000.0,
        "max_us": s[-1] / 1000.0,
        **({"client_cpu_us_per_call": 1e6 * cpu_s / calls} if cpu_s is not None and calls else {}),
    }


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on host right now (bound without SO_REUSEADDR, so not in TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def rss_kib() -> dict:
    """Current and peak resident set size of this process, in KiB."""
    cur = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    cur = int(line.split()[1])
                    break
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rss_kib": cur, "peak_rss_kib": peak}


class Ctl:
    """The party's side of the line protocol with the driver."""

    def __init__(self, role: str, time_limit: float) -> None:
        self.role = role
        self.deadline = time.monotonic() + time_limit
        self._buf = b""
        self._eof = False
        self._words: list[str] = []
        self._out = sys.stdout

    # -- party -> driver ---------------------------------------------------
    def _emit(self, tag: str, data: dict) -> None:
        self._out.write(f"@@{tag} {json.dumps(data, default=str)}\n")
        self._out.flush()

    def ready(self, **info) -> None:
        """Tell the driver this party is set up; ``info`` reaches the next parties."""
        self._emit("READY", info)

    def result(self, **metrics) -> None:
        """Report this party's figures (a flat dict of numbers/strings)."""
        self._emit("RESULT", metrics)

    def log(self, msg: str) -> None:
        print(f"[{self.role}] {msg}", file=sys.stderr, flush=True)

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    # -- driver -> party ---------------------------------------------------
    def poll(self, word: str, timeout: float = 0.0) -> bool:
        """True if the driver sent ``word`` (waits at most ``timeout`` s)."""
        end = time.monotonic() + timeout
        while True:
            if self._take(word):
                return True
            if self._eof:
                return word == "STOP"  # driver gone: treat as STOP
            left = end - time.monotonic()
            if left <= 0 and timeout > 0:
                return False
            r, _, _ = select.select([0], [], [], max(left, 0.0))
            if not r:
                return False
            chunk = os.read(0, 4096)
            if not chunk:
                self._eof = True
            self._buf += chunk

    def wait(self, word: str, timeout: float | None = None) -> None:
        """Block until the driver sends ``word``; TimeoutError at the deadline."""
        if timeout is None:
            timeout = self.time_left()
        if not self.poll(word, max(timeout, 0.001)):
            raise TimeoutError(f"{self.role}: no {word} from the driver in {timeout:.1f}s")

    def _take(self, word: str) -> bool:
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self._words.append(line.strip().decode())
        if word in self._words:
            self._words.remove(word)
            return True
        return False

    async def wait_trio(self, word: str, timeout: float | None = None) -> None:
        import trio

        await trio.to_thread.run_sync(self.wait, word, timeout)

    async def wait_asyncio(self, word: str, timeout: float | None = None) -> None:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.wait, word, timeout)
