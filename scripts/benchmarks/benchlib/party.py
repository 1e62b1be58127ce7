"""Runs one role of one party module in this process.

    python -m benchlib.party MODULE ROLE '{"n": 1000, ...}'
    python -m benchlib.party --check MODULE ROLE [ROLE ...]

MODULE is a dotted module name importable from scripts/benchmarks (for
example ``parties.zmq_party``); ROLE is the name of a function in it, called
as ``ROLE(ctl, **params)`` where ``ctl`` is a :class:`benchlib.Ctl`. A role
may be a plain function or an ``async def``; async roles run under trio,
unless the module sets ``ASYNC_LIB = "asyncio"``.

``--check`` imports the module and says (as ``@@CHECK {json}``) whether it
exists and has the roles: the driver uses it to tell "not yet available" from
"broken" without importing the party's libraries itself.

A watchdog ends the process (exit 3) at ``time_limit`` + 5 s whatever the
role is doing, so no party outlives its bound even if the driver is gone.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import sys
import threading
import traceback

from benchlib import Ctl


def _watchdog(seconds: float) -> None:
    def fire() -> None:
        print(f"@@ERROR {json.dumps({'error': f'watchdog: still running after {seconds:.0f}s'})}",
              flush=True)
        os._exit(3)

    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


def check(module: str, roles: list[str]) -> int:
    info: dict = {"module": module, "python": sys.version.split()[0], "executable": sys.executable}
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (e.name == module or module.startswith(e.name + ".")):
            info.update(ok=False, absent=True, error=f"no module {module}")
        else:
            info.update(ok=False, absent=False, error=f"{type(e).__name__}: {e}")
    except Exception as e:  # a broken party module is reported, not fatal
        info.update(ok=False, absent=False, error=f"{type(e).__name__}: {e}")
    else:
        missing = [r for r in roles if not callable(getattr(mod, r, None))]
        info.update(ok=not missing, absent=False, missing=missing)
        if missing:
            info["error"] = f"{module} has no role(s) {', '.join(missing)}"
    print(f"@@CHECK {json.dumps(info)}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--check":
        return check(argv[1], argv[2:])
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    module, role, raw = argv
    params = json.loads(raw)
    time_limit = float(params.get("time_limit", 60.0))
    _watchdog(time_limit + 5.0)
    ctl = Ctl(role, time_limit)
    try:
        mod = importlib.import_module(module)
        fn = getattr(mod, role)
        if inspect.iscoroutinefunction(fn):
            if getattr(mod, "ASYNC_LIB", "trio") == "asyncio":
                import asyncio

                asyncio.run(fn(ctl, **params))
            else:
                import trio

                trio.run(functools.partial(fn, ctl, **params))
        else:
            fn(ctl, **params)
    except BaseException as e:
        traceback.print_exc()
        msg = f"{type(e).__name__}: {e}"
        print(f"@@ERROR {json.dumps({'error': msg})}", flush=True)
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
