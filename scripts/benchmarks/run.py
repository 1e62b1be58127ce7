"""Benchmark driver: runs the scenarios of scenarios.py, prints one table, writes JSON.

Normally started by scripts/bench, which sets up the interpreters and runs this
inside a network namespace that has only `lo`. By hand (from anywhere):

    .bench/venv/bin/python scripts/benchmarks/run.py --python bench=.bench/venv/bin/python \
        --python appnet=.bench/appnet-venv/bin/python --python project=.venv/bin/python \
        --nats-server "$(command -v nats-server)" --quick --only zmq
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from orchestrate import (  # noqa: E402
    Context,
    PartyError,
    Runner,
    Unavailable,
    kind_roles,
    run_strace_check,
)
from scenarios import CHECKS, GROUP_ORDER, SCENARIOS, Scenario, by_name  # noqa: E402

DASH = "\u2013"  # en dash, for ranges
THROUGHPUT_BASE_NAMES = ("zmq.pubsub.1", "zmq.reqrep")  # ratios against these get no "*"

GROUP_TITLES = {
    "alternatives": "What users would pick instead",
    "limits": "Limits of this machine",
    "net": "net",
    "memory": "Memory (net only)",
    "scale": "Scale",
}


# --------------------------------------------------------------------- formatting
def fmt_num(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def fmt_val(v: float, unit: str) -> str:
    if unit == "us":
        return f"{v:.0f} µs" if v >= 10 else f"{v:.1f} µs"
    if unit == "KiB":
        return f"{v / 1024:.1f} MiB" if v >= 10240 else f"{v:.0f} KiB"
    return f"{fmt_num(v)} {unit}"


def fmt_range(s: dict, unit: str) -> str:
    lo, hi = s["min"], s["max"]
    if unit == "us":
        return f"{lo:.0f}{DASH}{hi:.0f} µs"
    if unit == "KiB":
        return f"{lo:.0f}{DASH}{hi:.0f} KiB"
    return f"{fmt_num(lo)}{DASH}{fmt_num(hi)}"


# --------------------------------------------------------------------- helpers
def summarize(runs: list[dict]) -> dict:
    keys = {
        k
        for r in runs
        for k, v in r.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "rep"
    }
    out = {}
    for k in sorted(keys):
        vals = [r[k] for r in runs if isinstance(r.get(k), (int, float))]
        if vals:
            out[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
    return out


def isolated_netns() -> bool:
    """True when this process's network namespace has no interface but lo."""
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


def versions(pythons: dict, nats_server: str) -> dict:
    snippet = (
        "import json, sys, importlib.metadata as m\n"
        "out = {'python': sys.version.split()[0]}\n"
        "for d in sys.argv[1:]:\n"
        "    try: out[d] = m.version(d)\n"
        "    except Exception: pass\n"
        "try:\n"
        "    import zmq; out['libzmq'] = zmq.zmq_version()\n"
        "except Exception: pass\n"
        "print(json.dumps(out))\n"
    )
    dists = ["pyzmq", "nats-py", "msgpack", "trio", "app-net", "netpeer", "zeroconf"]
    out: dict = {}
    for name, py in pythons.items():
        if not py or not Path(py).exists():
            continue
        try:
            cp = subprocess.run([py, "-c", snippet, *dists], capture_output=True, text=True,
                                timeout=30, cwd="/")
            out[name] = json.loads(cp.stdout)
        except (subprocess.TimeoutExpired, ValueError):
            out[name] = {"error": "could not query"}
    if nats_server and Path(nats_server).exists():
        try:
            cp = subprocess.run([nats_server, "--version"], capture_output=True, text=True, timeout=10)
            out["nats-server"] = cp.stdout.strip()
        except subprocess.TimeoutExpired:
            pass
    return out


def select(only: str | None, baselines: bool = True) -> list[Scenario]:
    """The scenarios --only names (exact names or dotted prefixes), plus their baselines."""
    if not only:
        return list(SCENARIOS)
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = {s.name for s in SCENARIOS if any(s.name == w or s.name.startswith(w + ".") for w in wanted)}
    unknown = [w for w in wanted if not any(s.name == w or s.name.startswith(w + ".") for s in SCENARIOS)]
    if unknown:
        sys.exit(f"unknown scenario(s): {', '.join(unknown)} (see --list)")
    if baselines:  # ratios only mean something against figures taken in the same run
        chosen |= {s.baseline for s in SCENARIOS if s.name in chosen and s.baseline}
    return [s for s in SCENARIOS if s.name in chosen]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs, 1 repetition (smoke test)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5; 1 with --quick)")
    ap.add_argument("--only", help="NAME[,NAME]: scenario names or dotted prefixes (zmq, net, limit.trio)")
    ap.add_argument("--json", default=str(ROOT / "bench-results" / "latest.json"), help="where to write")
    ap.add_argument("--list", action="store_true", help="list the scenarios and their availability")
    ap.add_argument("--no-baselines", action="store_true",
                    help="with --only, do not add the pyzmq rows the ratios are taken against")
    ap.add_argument("--python", action="append", default=[], metavar="NAME=PATH",
                    help="interpreter for parties declared with python=NAME")
    ap.add_argument("--nats-server", default=shutil.which("nats-server") or "")
    args = ap.parse_args()

    pythons = {"bench": sys.executable}
    for item in args.python:
        name, _, path = item.partition("=")
        pythons[name] = os.path.abspath(path) if path else path  # keep venv symlinks
    reps = args.reps if args.reps is not None else (1 if args.quick else 5)
    if reps < 1:
        sys.exit("--reps must be at least 1")
    log_dir = ROOT / ".bench" / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(pythons=pythons, nats_server=args.nats_server, log_dir=log_dir, quick=args.quick)
    runner = Runner(ctx)
    chosen = select(args.only, baselines=not args.no_baselines)
    registry = by_name()
    isolated = isolated_netns()
    t_start = time.monotonic()

    # ---- availability: each party module is imported once by its own interpreter
    status: dict[str, dict] = {s.name: {"status": "pending"} for s in chosen}
    checks_needed: dict[tuple, list[str]] = {}
    for s in chosen:
        roles = checks_needed.setdefault((s.python, s.party), [])
        roles += [r for r in kind_roles(s) if r not in roles]
    party_ok = {key: runner.check_party(key[0], key[1], roles) for key, roles in checks_needed.items()}
    for s in chosen:
        chk = party_ok[(s.python, s.party)]
        missing = [r for r in kind_roles(s) if r in chk.get("missing", [])]
        if chk.get("absent"):
            status[s.name] = {"status": "unavailable", "reason": f"not yet available ({chk['error']})"}
        elif missing:
            status[s.name] = {"status": "unavailable",
                              "reason": f"not yet available ({s.party} has no {', '.join(missing)})"}
        elif not chk.get("ok") and "missing" not in chk:  # the import itself failed
            status[s.name] = {"status": "unavailable", "reason": f"party broken: {chk['error']}"}
        elif "nats-server" in s.services and not (args.nats_server and Path(args.nats_server).exists()):
            status[s.name] = {"status": "unavailable", "reason": "nats-server is not installed"}

    if args.list:
        for s in chosen:
            st = status[s.name]
            mark = "ok " if st["status"] == "pending" else "-- "
            print(f"{mark}{s.name:32} {s.label}" + (f"   [{st['reason']}]" if "reason" in st else ""))
        return 0

    log(f"bench: {len(chosen)} scenarios, {reps} repetition(s){' (quick)' if args.quick else ''};"
        f" network namespace with only lo: {'yes' if isolated else 'NO'}; logs in {log_dir}")

    # ---- safety checks (once), before anything that needs them
    check_results: dict[str, dict] = {}
    for s in chosen:
        c = s.needs_check
        if not c or status[s.name]["status"] != "pending" or c in check_results:
            continue
        targets = [registry[t] for t in CHECKS[c]]
        log(f"check {c}: running {', '.join(t.name for t in targets)} once under strace ...")
        res = run_strace_check(runner, targets)
        check_results[c] = res
        if res.get("ok"):
            log(f"check {c}: ok: {res['inet_calls']} socket calls with an IP address, all loopback"
                f" ({', '.join(sorted(res['addresses']))}); programs executed: "
                f"{', '.join(res['executed']) or 'none'}")
        else:
            log(f"check {c}: FAILED: {json.dumps(res)[:600]}")
    for s in chosen:
        c = s.needs_check
        if c and status[s.name]["status"] == "pending" and not check_results.get(c, {}).get("ok"):
            status[s.name] = {"status": "skipped",
                              "reason": f"safety check {c} failed: not run"
                                        f" ({check_results.get(c, {}).get('error', 'see JSON')})"}

    # ---- repetitions, interleaved so that slow drifts of a noisy machine spread over all rows
    runs: dict[str, list[dict]] = {s.name: [] for s in chosen}
    errors: dict[str, list[str]] = {s.name: [] for s in chosen}
    runnable = [s for s in chosen if status[s.name]["status"] == "pending"]
    for rep in range(reps):
        for s in runnable:
            if s.max_reps and rep >= s.max_reps:
                continue
            t0 = time.monotonic()
            try:
                m = runner.run(s)
            except Unavailable as e:
                status[s.name] = {"status": "unavailable", "reason": str(e)}
                continue
            except PartyError as e:
                errors[s.name].append(str(e))
                log(f"[{rep + 1}/{reps}] {s.name}: FAILED: {e}")
                continue
            m["rep"] = rep + 1  # pairs this run with the baseline's of the same repetition
            runs[s.name].append(m)
            v = m.get(s.metric)
            extra = ""
            if "loss_pct" in m and m.get("lost"):
                extra = f", lost {m['loss_pct']:.1f}%"
            if "p99_us" in m:
                extra = f", p99 {m['p99_us']:.0f} µs"
            shown = fmt_val(v, s.unit) if isinstance(v, (int, float)) else repr(v)
            log(f"[{rep + 1}/{reps}] {s.name}: {shown}{extra}  ({time.monotonic() - t0:.1f}s)")
        runnable = [s for s in runnable if status[s.name]["status"] == "pending"]

    # ---- summaries and ratios
    results: dict[str, dict] = {}
    for s in chosen:
        st = dict(status[s.name])
        if st["status"] == "pending":
            st["status"] = "ok" if runs[s.name] else "failed"
            if errors[s.name]:
                st["errors"] = errors[s.name]
                if not runs[s.name]:
                    st["reason"] = errors[s.name][-1].splitlines()[0]
        summary = summarize(runs[s.name])
        results[s.name] = {
            "label": s.label, "system": s.system, "group": s.group, "kind": s.kind,
            "party": s.party, "python": s.python, "subscribers": s.subscribers,
            "metric": s.metric, "unit": s.unit, "baseline": s.baseline,
            "params": runner.params(s), **st, "runs": runs[s.name], "summary": summary,
        }
    for s in chosen:
        r = results[s.name]
        base = results.get(s.baseline) if s.baseline else None
        if base is None and s.baseline and s.baseline in registry and s.baseline not in results:
            r["ratio_note"] = f"baseline {s.baseline} not run"
        if base and s.metric in r["summary"] and base["metric"] in base["summary"]:
            mine = r["summary"][s.metric]["median"]
            theirs = base["summary"][base["metric"]]["median"]
            if theirs:
                r["ratio"] = mine / theirs
            # the same ratio within each repetition: the machine's drift between
            # repetitions (often larger than the difference measured) cancels out
            base_by_rep = {b.get("rep"): b.get(base["metric"]) for b in base["runs"]}
            paired = [
                m[s.metric] / base_by_rep[m.get("rep")]
                for m in r["runs"]
                if isinstance(m.get(s.metric), (int, float)) and base_by_rep.get(m.get("rep"))
            ]
            if paired:
                r["paired_ratios"] = paired
                r["paired_ratio"] = {
                    "median": statistics.median(paired),
                    "min": min(paired),
                    "max": max(paired),
                    "n": len(paired),
                }

    elapsed = time.monotonic() - t_start
    meta = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
        "quick": args.quick, "reps": reps, "only": args.only, "elapsed_s": round(elapsed, 1),
        "isolated_netns": isolated, "versions": versions(pythons, args.nats_server),
        "checks": check_results,
        "ratios": "throughput: median rate / the baseline's median rate (higher is better);"
                  " latency: median p50 / the baseline's median p50 (lower is better);"
                  " paired_ratio: the same ratio within each repetition, median and range",
    }
    print_table(chosen, results, meta)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "scenarios": results}, indent=2, default=str) + "\n")
    log(f"bench: figures written to {out} ({elapsed:.0f}s)")
    failed = [n for n, r in results.items() if r["status"] == "failed"]
    return 1 if failed else 0


def notes_for(s: Scenario, r: dict) -> str:
    sm = r["summary"]
    parts = []
    if s.kind == "pubsub" and "lost" in sm:
        if sm["lost"]["max"] == 0:
            parts.append("no loss")
        else:
            lp = sm["loss_pct"]
            parts.append(f"LOST {lp['median']:.1f}% ({lp['min']:.1f}{DASH}{lp['max']:.1f}%)")
        if sm.get("reordered", {}).get("max"):
            parts.append(f"reordered {sm['reordered']['median']:.0f}")
        if sm.get("dups", {}).get("max"):
            parts.append(f"dups {sm['dups']['median']:.0f}")
        if sm.get("end_missing", {}).get("max"):
            parts.append("END marker lost")
        if s.subscribers > 1:
            parts.append(f"{s.subscribers} subs, slowest {fmt_num(sm['rate_min_subscriber']['median'])}")
        if s.subscribers > 1 and "publisher_converge_s" in sm:
            parts.append(f"all attached {sm['publisher_converge_s']['median']:.1f} s after READY")
        if s.subscribers > 1 and "aggregate_rate" in sm:
            parts.append(f"total {fmt_num(sm['aggregate_rate']['median'])}/s")
    if "p99_us" in sm:
        p = sm["p99_us"]
        parts.append(f"p99 {p['median']:.0f} µs ({p['min']:.0f}{DASH}{p['max']:.0f})")
    if "client_cpu_us_per_call" in sm:
        parts.append(f"caller CPU {sm['client_cpu_us_per_call']['median']:.0f} µs/call")
    if "pack_rate" in sm:
        parts.append(f"pack {fmt_num(sm['pack_rate']['median'])}/s,"
                     f" unpack {fmt_num(sm['unpack_rate']['median'])}/s")
    if r.get("errors"):
        parts.append(f"{len(r['errors'])} failed run(s)")
    return "; ".join(parts)


def print_table(chosen: list[Scenario], results: dict, meta: dict) -> None:
    rows = []
    header = (
        "scenario", "what", "median", f"range (min{DASH}max)", "vs pyzmq", "paired", "notes"
    )
    for group in GROUP_ORDER:
        members = [s for s in chosen if s.group == group]
        if not members:
            continue
        rows.append(("#", GROUP_TITLES.get(group, group)))
        for s in members:
            r = results[s.name]
            if r["status"] != "ok":
                word = {"unavailable": "not yet available" if "not yet" in r.get("reason", "")
                        else "unavailable", "skipped": "not run", "failed": "FAILED"}[r["status"]]
                reason = r.get("reason", "")
                if reason.startswith("not yet available"):
                    reason = reason[len("not yet available"):].strip(" ()")
                rows.append((s.name, s.label, word, "", "", "", reason[:90]))
                continue
            sm = r["summary"][s.metric]
            med = fmt_val(sm["median"], s.unit)
            if s.unit == "us":
                med = "p50 " + med
            ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "—"
            if "ratio" in r and s.baseline not in (THROUGHPUT_BASE_NAMES):
                ratio += "*"
            rng = fmt_range(sm, s.unit) if sm["n"] > 1 else "(1 run)"
            pr = r.get("paired_ratio")
            paired = (
                f"{pr['median']:.2f}x ({pr['min']:.2f}{DASH}{pr['max']:.2f})"
                if pr and pr["n"] > 1 and s.baseline != s.name
                else ""
            )
            rows.append((s.name, s.label, med, rng, ratio, paired, notes_for(s, r)))
    widths = [len(h) for h in header]
    for row in rows:
        if row[0] == "#":
            continue
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    widths[1] = min(widths[1], 60)
    line = "  ".join("-" * w for w in widths)
    v = meta["versions"]
    print()
    print(f"net benchmarks — {meta['date']} — {meta['cpus']} CPUs — "
          f"{'quick, ' if meta['quick'] else ''}{meta['reps']} repetition(s), medians"
          f" — isolated netns: {'yes' if meta['isolated_netns'] else 'no'}")
    b = v.get("bench", {})
    print(f"python {b.get('python')}, pyzmq {b.get('pyzmq')} (libzmq {b.get('libzmq')}), nats-py "
          f"{b.get('nats-py')}, {v.get('nats-server', 'nats-server ?')}, msgpack {b.get('msgpack')}, "
          f"trio {b.get('trio')}, app-net {v.get('appnet', {}).get('app-net', '?')}"
          + (f", netpeer {v['project'].get('netpeer')}" if v.get("project", {}).get("netpeer") else ""))
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        if row[0] == "#":
            print(f"{row[1]}:")
            continue
        cells = list(row)
        if len(cells[1]) > widths[1]:
            cells[1] = cells[1][: widths[1] - 1] + "…"
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    print(line)
    print("vs pyzmq: throughput = median rate / pyzmq PUB/SUB 1 subscriber (unbounded) median rate;"
          " latency = median p50 / pyzmq REQ/REP median p50 (below 1 is faster).")
    print("  * = against the pyzmq row with the same shape instead (4 or 50 subscribers, 64 KiB, 1 MiB:"
          " per-subscriber rate against per-subscriber rate).")
    print("paired: the same ratio taken within each repetition (this row's run against the pyzmq run"
          " of the same repetition), median and range: the machine's drift between repetitions"
          " cancels out.")
    print("Rates are measured at the receiver, first to last message; every message unpacked and its"
          " sequence number checked. Differences under ~15% are noise on this machine.")
    for s in chosen:
        if s.note and results[s.name]["status"] == "ok":
            print(f"note: {s.note}")
    for name, c in meta["checks"].items():
        if c.get("ok"):
            print(f"check {name}: passed — {c['inet_calls']} socket calls with an IP address under"
                  f" strace, all to {', '.join(sorted(c['addresses']))}; no program executed but"
                  f" python; netns with only lo: {'yes' if meta['isolated_netns'] else 'no'}")
        else:
            why = c.get("error") or c.get("non_loopback") or c.get("unexpected_exec")
            print(f"check {name}: FAILED — {why}")
    print()


if __name__ == "__main__":
    sys.exit(main())
