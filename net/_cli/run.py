"""``netpeer run [MODULE_OR_FILE ...]``: the daemon.

It configures the default peer from the flags (by setting the ``NET_*``
variables before the default peer is created), starts it, imports the user's
modules (their ``@net.connect``/``@net.event``/``@net.subscribe`` decorators
register on the default peer, exactly as in a plain script), and serves until
SIGINT/SIGTERM, then stops cleanly: goodbyes are sent on every link.

The default peer runs in net's background trio thread (the synchronous face),
so module code runs as it would in a script: at import time it may call
remote connections, trigger events or install its own threads.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from .. import _api
from ..errors import ConfigError, NetError
from ..peer import Peer
from . import _common as c
from ._format import dumps, err, join_names, out, user_connections

log = logging.getLogger("net.cli")

HELP = "run the daemon: a peer serving the connections, events and subscriptions of modules"

DESCRIPTION = """\
Run a peer that hosts the given modules: each MODULE_OR_FILE is a dotted module
name (importable from the current directory or sys.path) or a path to a .py
file. Their @net.connect, @net.event and @net.subscribe decorators register on
the peer. Serves until SIGINT or SIGTERM, then says goodbye to every peer and
exits 0. A module that fails to import is reported with its traceback (exit 1).

Logs go to stderr (peers linked and lost, subscribers added and pruned at INFO).
With --json, status lines go to stdout: ready, linked, unlinked, stopping, stopped.
"""

EPILOG = """\
examples:
  netpeer run sensors.py
  netpeer run myapp.workers --name worker-1 --group lab --port 3010
  NET_PEERS=10.0.0.5:3010 netpeer run --discovery static tasks.py
"""

_ENV = {
    "name": "NET_NAME",
    "host": "NET_HOST",
    "port": "NET_PORT",
    "port_range": "NET_PORT_RANGE",
    "group": "NET_GROUP",
    "discovery": "NET_DISCOVERY",
    "interfaces": "NET_INTERFACES",
    "log_level": "NET_LOG_LEVEL",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[c.json_option(), c.peer_options(daemon=True)],
    )
    p.add_argument(
        "modules",
        nargs="*",
        metavar="MODULE_OR_FILE",
        help="dotted module name or path to a .py file, imported in order",
    )
    p.set_defaults(_main=main)
    return p


class _Interrupted(BaseException):
    """SIGINT/SIGTERM while the modules were being imported."""


def is_file_target(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target


def main(args: argparse.Namespace) -> int:
    c.configure_logging(args.log_level, default="INFO")
    c.make_settings(args, daemon=True)  # usage errors first
    for target in args.modules:
        if is_file_target(target) and not Path(target).is_file():
            raise c.UsageError(f"{target}: no such file")
        if not is_file_target(target) and not all(
            part.isidentifier() for part in target.split(".")
        ):
            raise c.UsageError(f"{target!r} is neither a module name nor a path to a .py file")
    # The default peer reads NET_* when it is created: set them from the flags first.
    for key, value in c.overrides(args, daemon=True).items():
        if value is None:
            continue
        if key == "hub":
            os.environ["NET_IS_HUB"] = "1" if value else "0"
        elif key == "peers":
            os.environ["NET_PEERS"] = ",".join(value)
        else:
            os.environ[_ENV[key]] = str(value)

    if args.name is None and not os.environ.get("NET_NAME"):
        # <program>-<pid>, where the program is the first module hosted
        first = args.modules[0] if args.modules else "netpeer"
        stem = Path(first).stem if is_file_target(first) else first.rsplit(".", 1)[-1]
        os.environ["NET_NAME"] = f"{stem}-{os.getpid()}"
    return _Daemon(args).main()


class _Daemon:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stop = threading.Event()
        self.importing = False
        self.signal_name = ""

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        self.stop.set()
        if self.importing:
            raise _Interrupted()

    def status(self, event: str, **fields: Any) -> None:
        if self.args.json:
            out(dumps({"event": event, "time": time.time(), **fields}))

    def main(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        peer = _api.default_peer()
        try:
            peer.start()
        except ConfigError as exc:
            raise c.UsageError(str(exc)) from None
        except (NetError, OSError) as exc:
            raise c.Failure(f"cannot start the peer: {exc}") from None
        except BaseExceptionGroup as group:
            leaf = c.sole_leaf(group)
            if isinstance(leaf, ConfigError):
                raise c.UsageError(str(leaf)) from None
            if isinstance(leaf, (NetError, OSError)):
                raise c.Failure(f"cannot start the peer: {leaf}") from None
            raise
        try:
            status = self._serve(peer)
        finally:
            self.importing = False
            self.status("stopping", reason=self.signal_name or "exit")
            _api.stop()
            log.info("netpeer: %s stopped", peer.name)
            self.status("stopped")
        _exit_despite_threads(status)
        return status

    def _serve(self, peer: Peer) -> int:
        loaded: list[str] = []
        self.importing = True
        try:
            status = self._import_all(loaded)
            if status is not None:
                return status
            return self._run(peer, loaded)
        except _Interrupted:  # a signal between two imports
            log.warning("interrupted (%s) while importing", self.signal_name)
            return c.EXIT_OK
        finally:
            self.importing = False

    def _import_all(self, loaded: list[str]) -> int | None:
        """Import the modules; an exit status if the daemon must stop, else None."""
        for target in self.args.modules:
            if self.stop.is_set():
                break
            log.info("importing %s", target)
            try:
                module = import_target(target)
            except _Interrupted:
                log.warning("interrupted (%s) while importing %s", self.signal_name, target)
                return c.EXIT_OK
            except ModuleNotFoundError as exc:
                if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
                    err(
                        f"netpeer run: cannot import {target!r}: {exc} (looked in the "
                        f"current directory and sys.path; give a path to a .py file?)"
                    )
                else:
                    _print_import_error(target)
                return c.EXIT_FAILED
            except SystemExit as exc:  # the module (or its signal handler) exited
                code = exc.code
                status = code if isinstance(code, int) else (0 if code is None else 1)
                log.info("%s exited (status %s) while being imported", target, code)
                if code is not None and not isinstance(code, int):
                    err(f"netpeer run: {target}: {code}")
                return status
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt) and self.stop.is_set():
                    return c.EXIT_OK
                _print_import_error(target)
                return c.EXIT_FAILED
            loaded.append(getattr(module, "__name__", target))
        self.importing = False
        return c.EXIT_OK if self.stop.is_set() else None

    def _run(self, peer: Peer, loaded: list[str]) -> int:
        """Serve until a signal (or until the peer stops by itself)."""
        info = peer.info()
        log.info(
            "netpeer: %s (id %s) serving on port %s, group %r%s; modules: %s; "
            "connections: %s; events: %s; subscribes to: %s",
            peer.name,
            peer.id[:8],
            peer.port,
            info["group"],
            ", hub" if info["hub"] else "",
            join_names(loaded, "none"),
            join_names(user_connections(info["connections"]), "none"),
            join_names(info["events"], "none"),
            join_names(info["subscribed"], "none"),
        )
        self.status(
            "ready",
            id=peer.id,
            name=peer.name,
            port=peer.port,
            host=info["host"],
            group=info["group"],
            hub=info["hub"],
            pid=os.getpid(),
            modules=loaded,
            connections=info["connections"],
            events=info["events"],
            subscribed=info["subscribed"],
        )
        known: dict[str, dict[str, Any]] = {}
        while True:
            current = {p.id: p.as_dict() for p in peer.peers()}
            for pid, rec in current.items():
                if pid not in known:
                    self.status("linked", peer=_strip(rec))
            for pid, rec in known.items():
                if pid not in current:
                    self.status("unlinked", peer=_strip(rec))
            known = current
            if not peer.running:
                log.warning("netpeer: the peer stopped by itself")
                return c.EXIT_FAILED if not self.stop.is_set() else c.EXIT_OK
            if self.stop.wait(0.25):
                log.info("netpeer: %s received; saying goodbye", self.signal_name)
                return c.EXIT_OK


def _strip(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "alive"}


def import_target(target: str) -> ModuleType:
    """Import a dotted module name or a ``.py`` file (its directory goes on sys.path)."""
    if is_file_target(target):
        path = Path(target).resolve()
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = path.stem if path.stem.isidentifier() else "netpeer_module"
        if name in sys.modules:
            name = f"netpeer_{name}_{len(sys.modules)}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {target} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    return importlib.import_module(target)


def _print_import_error(target: str) -> None:
    err(f"netpeer run: {target} failed to import:")
    err(traceback.format_exc().rstrip())


def _exit_despite_threads(status: int) -> None:
    """Module code may have started non-daemon threads that never end: don't hang on them."""
    others = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    deadline = time.monotonic() + 2.0
    for t in others:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in others):
        log.warning(
            "netpeer: threads still running (%s); exiting anyway",
            ", ".join(t.name for t in others if t.is_alive()),
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
