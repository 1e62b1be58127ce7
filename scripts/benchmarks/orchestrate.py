"""Driver side: starts party processes, wires them by kind, collects RESULTs.

Every process started here is killed by its own process group id (each party
is started in a new session, so its group id is its pid) if it has not exited
by the end of its run; nothing is ever killed by name.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from scenarios import KIND_ROLES, Scenario

HERE = Path(__file__).resolve().parent


class PartyError(Exception):
    pass


class Unavailable(Exception):
    pass


def party_env() -> dict:
    """The environment of party processes: no PYTHONPATH tricks, no NET_* from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NET_", "PYTHON"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Party:
    """One party process and its line protocol."""

    def __init__(self, label: str, argv: list[str], log_path: Path, env: dict | None = None):
        self.label = label
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (lives as long as the party)
        self._log.write(f"$ {' '.join(argv[:6])} ...\n".encode())
        self._log.flush()
        self.q: queue.Queue = queue.Queue()
        self.p = subprocess.Popen(
            argv, cwd=HERE, env=env or party_env(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for raw in self.p.stdout:
            if raw.startswith(b"@@"):
                tag, _, rest = raw[2:].decode(errors="replace").strip().partition(" ")
                try:
                    data = json.loads(rest) if rest else {}
                except ValueError:
                    data = {"raw": rest}
                self.q.put((tag, data))
            else:
                self._log.write(raw)
        self.q.put(("EOF", {}))

    def expect(self, tag: str, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise PartyError(f"{self.label}: no {tag} within {timeout:.0f}s{self.tail()}")
            try:
                got, data = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if got == tag:
                return data
            if got == "ERROR":
                raise PartyError(f"{self.label}: {data.get('error')}{self.tail()}")
            if got == "EOF":
                self.p.wait(5)
                raise PartyError(
                    f"{self.label}: exited ({self.p.returncode}) before {tag}{self.tail()}")

    def send(self, word: str) -> None:
        try:
            assert self.p.stdin is not None
            self.p.stdin.write(word.encode() + b"\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def tail(self, lines: int = 6) -> str:
        try:
            self._log.flush()
            text = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n      | " + "\n      | ".join(text)) if text else ""

    def finish(self, timeout: float = 5.0) -> None:
        """Close stdin, wait a little, then kill this party's process group if still there."""
        try:
            if self.p.stdin:
                self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.p.wait(5)
        else:
            # the party is gone; anything it left in its own group goes too
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._reader.join(2)
        self._log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """nats-server on 127.0.0.1 only, on a free port, for one run."""

    def __init__(self, binary: str, log_path: Path):
        if not binary or not Path(binary).exists():
            raise Unavailable("nats-server is not installed")
        self.port = free_port()
        self._log = open(log_path, "ab")  # noqa: SIM115 (lives as long as the server)
        self.p = subprocess.Popen(
            [binary, "-a", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.p.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise PartyError(f"nats-server did not start (see {log_path})") from None
                time.sleep(0.02)

    @property
    def params(self) -> dict:
        return {"nats_url": f"nats://127.0.0.1:{self.port}"}

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self._log.close()


@dataclass
class Context:
    """What a run needs from the command line."""

    pythons: dict  # interpreter name -> path
    nats_server: str
    log_dir: Path
    quick: bool
    wrap: list = field(default_factory=list)  # prefix for every party command (strace)
    wrap_tag: str = ""


class Runner:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._n = 0

    def params(self, scn: Scenario) -> dict:
        p = dict(scn.params)
        if self.ctx.quick:
            p.update(scn.quick)
        p.setdefault("time_limit", 30.0 if self.ctx.quick else scn.time_limit)
        if scn.kind == "pubsub":
            # publishers stop at n messages or after `duration` s, whichever comes first
            p.setdefault("duration", 1.0 if self.ctx.quick else 3.0)
        return p

    def start(self, scn: Scenario, kind_role: str, params: dict, label: str,
              wrap: list | None = None) -> Party:
        py = self.ctx.pythons.get(scn.python)
        if not py or not Path(py).exists():
            raise Unavailable(f"interpreter {scn.python!r} not found ({py})")
        self._n += 1
        log = self.ctx.log_dir / f"{scn.name}.{self._n:04d}.{label}.log"
        argv = [py, "-m", "benchlib.party", scn.party, scn.role(kind_role), json.dumps(params)]
        if wrap:
            argv = [*[w.replace("{log}", str(log.with_suffix(".strace"))) for w in wrap], *argv]
        return Party(f"{scn.name}/{label}", argv, log)

    def run(self, scn: Scenario, wrap: list | None = None) -> dict:
        """One repetition of scn; returns the merged metrics."""
        params = self.params(scn)
        t_ready = float(params.get("ready_timeout", 30))
        t_run = float(params["time_limit"]) + 10
        services = []
        parties: list[Party] = []
        try:
            for svc in scn.services:
                if svc != "nats-server":
                    raise Unavailable(f"unknown service {svc}")
                s = NatsServer(self.ctx.nats_server, self.ctx.log_dir / f"{scn.name}.nats.log")
                services.append(s)
                params.update(s.params)
            if scn.kind == "pubsub":
                return self._pubsub(scn, params, parties, t_ready, t_run, wrap)
            if scn.kind == "pair":
                return self._pair(scn, params, parties, t_ready, t_run, wrap)
            if scn.kind == "single":
                main = self.start(scn, "main", params, "main", wrap)
                parties.append(main)
                return main.expect("RESULT", t_run)
            raise ValueError(f"{scn.name}: unknown kind {scn.kind}")
        finally:
            for p in parties:
                p.finish()
            for s in services:
                s.stop()

    def _pubsub(self, scn, params, parties, t_ready, t_run, wrap) -> dict:
        k = scn.subscribers
        params = {**params, "subscribers": k}
        pub = self.start(scn, "publisher", params, "publisher", wrap)
        parties.append(pub)
        info = pub.expect("READY", t_ready)
        subs = []
        for i in range(k):
            s = self.start(scn, "subscriber", {**params, **info, "index": i}, f"subscriber{i}", wrap)
            parties.append(s)
            subs.append(s)
        for s in subs:
            s.expect("READY", t_ready)
        pub.send("GO")
        results = [s.expect("RESULT", t_run) for s in subs]
        pub.send("STOP")
        pres = pub.expect("RESULT", 15)
        rates = [r.get("rate", 0.0) for r in results]
        out = {
            "rate": statistics.median(rates),
            "rate_min_subscriber": min(rates),
            "rate_max_subscriber": max(rates),
            "aggregate_rate": sum(rates),
            "sent": pres.get("sent"),
            "send_rate": pres.get("send_rate"),
            "lost": sum(r.get("lost", 0) for r in results),
            "loss_pct": statistics.mean(r.get("loss_pct", 0.0) for r in results),
            "reordered": sum(r.get("reordered", 0) for r in results),
            "dups": sum(r.get("dups", 0) for r in results),
            "end_missing": sum(1 for r in results if r.get("end_seen") is False),
        }
        attach = [r["attach_s"] for r in results if isinstance(r.get("attach_s"), (int, float))]
        if attach:  # subscribers that report how long they took to be attached (start -> listed)
            out["attach_s_median"] = statistics.median(attach)
            out["attach_s_max"] = max(attach)
        cpu = [r["cpu_us_per_msg"] for r in results if isinstance(r.get("cpu_us_per_msg"), (int, float))]
        if cpu:  # CPU time a subscriber spent per message (all its threads), median over subscribers
            out["subscriber_cpu_us_per_msg"] = statistics.median(cpu)
        missed = [r["missed"] for r in results if isinstance(r.get("missed"), (int, float))]
        if missed:  # gaps the subscribers' own protocol layer saw (net: TRIGGER seq numbers)
            out["missed"] = sum(missed)
        for key, val in pres.items():  # anything else the publisher reports (e.g. RSS)
            if key not in ("sent", "send_rate"):
                out[f"publisher_{key}"] = val
        errors = sum(r.get("errors", 0) for r in results)
        if errors:
            out["subscriber_errors"] = errors
            out["first_error"] = next(r["first_error"] for r in results if r.get("first_error"))
        return out

    def _pair(self, scn, params, parties, t_ready, t_run, wrap) -> dict:
        srv = self.start(scn, "server", params, "server", wrap)
        parties.append(srv)
        info = srv.expect("READY", t_ready)
        cli = self.start(scn, "client", {**params, **info}, "client", wrap)
        parties.append(cli)
        out = dict(cli.expect("RESULT", t_run))
        srv.send("STOP")
        try:
            sres = srv.expect("RESULT", 15)
        except PartyError:
            sres = {}
        out.update({f"server_{k}": v for k, v in sres.items()})
        return out

    def check_party(self, python: str, module: str, roles: list[str]) -> dict:
        """Ask the interpreter whether the party module exists and has the roles."""
        py = self.ctx.pythons.get(python)
        if not py or not Path(py).exists():
            return {"ok": False, "absent": False, "error": f"interpreter {python!r} not found ({py})"}
        if not (HERE / (module.replace(".", "/") + ".py")).exists():
            return {"ok": False, "absent": True, "error": f"no {module.replace('.', '/')}.py"}
        try:
            cp = subprocess.run(
                [py, "-m", "benchlib.party", "--check", module, *roles], cwd=HERE,
                env=party_env(), capture_output=True, text=True, timeout=60,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "absent": False, "error": "import of the party module timed out"}
        for line in cp.stdout.splitlines():
            if line.startswith("@@CHECK "):
                return json.loads(line[8:])
        return {"ok": False, "absent": False,
                "error": f"check failed ({cp.returncode}): {cp.stderr.strip()[-300:]}"}


# --------------------------------------------------------------------- strace check
_INET = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')
_EXEC = re.compile(r'execve\("([^"]+)"')


def strace_verdict(files: list[Path], allowed_exec: set[str]) -> dict:
    """Read strace logs: every IP address must be loopback, no program executed but python."""
    addrs: dict[str, int] = {}
    execs: set[str] = set()
    calls = 0
    for f in files:
        for line in f.read_text(errors="replace").splitlines():
            if "execve(" in line:
                m = _EXEC.search(line)
                if m:
                    execs.add(m.group(1))
            for m in _INET.finditer(line):
                calls += 1
                a = m.group(1) or m.group(2)
                addrs[a] = addrs.get(a, 0) + 1
    bad_addrs = sorted(a for a in addrs if not (a.startswith("127.") or a == "::1"))
    bad_exec = sorted(e for e in execs if os.path.realpath(e) not in allowed_exec and e not in allowed_exec)
    return {
        "ok": bool(files) and calls > 0 and not bad_addrs and not bad_exec,
        "files": len(files),
        "inet_calls": calls,
        "addresses": addrs,
        "non_loopback": bad_addrs,
        "executed": sorted(execs),
        "unexpected_exec": bad_exec,
    }


def run_strace_check(runner: Runner, targets: list[Scenario]) -> dict:
    """Run each target once (quick sizes) under strace and judge the syscalls."""
    strace = shutil.which("strace")
    if not strace:
        return {"ok": False, "error": "strace is not installed"}
    wrap = [strace, "-f", "-qq", "-e", "trace=%network,execve", "-o", "{log}"]
    quick = runner.ctx.quick
    runner.ctx.quick = True
    before = set(runner.ctx.log_dir.glob("*.strace"))
    try:
        for scn in targets:
            runner.run(scn, wrap=wrap)
    except (PartyError, Unavailable) as e:
        return {"ok": False, "error": str(e)}
    finally:
        runner.ctx.quick = quick
    files = sorted(set(runner.ctx.log_dir.glob("*.strace")) - before)
    allowed = set()
    for scn in targets:
        py = runner.ctx.pythons.get(scn.python)
        if py:
            allowed |= {py, os.path.realpath(py)}
    return strace_verdict(files, allowed)


def kind_roles(scn: Scenario) -> list[str]:
    return [scn.role(r) for r in KIND_ROLES[scn.kind]]
