"""Profile one scenario: every party of one repetition runs under py-spy.

    (py-spy comes with the bench venv: scripts/benchmarks/requirements-bench.txt)
    .bench/venv/bin/python scripts/benchmarks/profile_parties.py net.pubsub.1 [--quick] [--top 25]

Prints, for each party, the functions where its threads spent their samples
(self time, and inclusive time), and leaves the collapsed stacks in
.bench/profile/<scenario>.<party>.txt (flamegraph.pl / speedscope read them).
It runs on this host's loopback (not in a namespace) and only on 127.0.0.1,
like every party. Figures measured under a profiler are slower than without:
compare the shares, not the rates.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from orchestrate import Context, Runner  # noqa: E402
from scenarios import by_name  # noqa: E402

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    f = m.group("file")
    for cut in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if cut in f:
            f = f.split(cut, 1)[1]
    return f"{m.group('fn')} ({f})"


def summarize(path: Path, top: int) -> str:
    self_c: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    threads: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames and frames[0].startswith(("process ", "thread ")):
            threads[frames[0]] += n
            frames = frames[1:]
        if frames and frames[0].startswith("thread "):
            threads[frames[0]] += n
            frames = frames[1:]
        total += n
        names = [short(f) for f in frames]
        if names:
            self_c[names[-1]] += n
        for name in set(names):
            incl[name] += n
    if not total:
        return "  (no samples)"
    out = [
        f"  {total} samples; threads: "
        + ", ".join(f"{t} {100 * c / total:.0f}%" for t, c in threads.most_common(6))
    ]
    out.append("  self:")
    out += [f"    {100 * c / total:5.1f}%  {name}" for name, c in self_c.most_common(top)]
    out.append("  inclusive:")
    out += [f"    {100 * c / total:5.1f}%  {name}" for name, c in incl.most_common(top)]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("scenario")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--python", action="append", default=[], metavar="NAME=PATH")
    args = ap.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        sys.exit("py-spy is not installed: .bench/venv/bin/pip install py-spy")
    pythons = {
        "bench": sys.executable,
        "project": str(ROOT / ".venv" / "bin" / "python"),
        "appnet": str(ROOT / ".bench" / "appnet-venv" / "bin" / "python"),
    }
    for item in args.python:
        name, _, path = item.partition("=")
        pythons[name] = path
    out_dir = ROOT / ".bench" / "profile"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    scn = by_name()[args.scenario]
    runner = Runner(Context(pythons=pythons, nats_server="", log_dir=out_dir, quick=args.quick))
    wrap = [
        pyspy,
        "record",
        "--format",
        "raw",
        "--threads",
        "--nonblocking",
        "-r",
        str(args.rate),
        "-o",
        "{log}",
        "--",
    ]
    result = runner.run(scn, wrap=wrap)
    print(f"{scn.name}: {scn.metric} = {result.get(scn.metric)} (under py-spy)")
    for f in sorted(out_dir.glob("*.strace")):
        txt = f.with_suffix(".txt")
        f.rename(txt)
        party = txt.name.split(".")[-2]
        print(f"\n== {party} ({txt.relative_to(ROOT)})")
        print(summarize(txt, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
