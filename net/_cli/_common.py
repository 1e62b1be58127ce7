"""What the ``netpeer`` commands share: peer options, argument parsing, logging,
the temporary client peer that finds the network, and running trio commands.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

from .. import _settings
from ..errors import ConfigError, NetError, PeerNotFound
from ..peer import Peer, PeerInfo

log = logging.getLogger("net.cli")

#: What the CLI uses when neither ``--discovery`` nor ``NET_DISCOVERY`` says.
CLI_DEFAULT_DISCOVERY = "mdns"
#: Exit statuses.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class UsageError(Exception):
    """Bad command line (or bad ``NET_*`` value): exit status 2 with this message."""


class Failure(Exception):
    """The command could not do its job: exit status 1 with this message."""


# --- option groups -------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0..65535)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0..65535)")
    return value


def _address_list(text: str) -> list[str]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            _settings.parse_address(part)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc} (expected host:port[,host:port...])") from None
        out.append(part)
    if not out:
        raise argparse.ArgumentTypeError("expected host:port[,host:port...]")
    return out


def _interfaces(text: str) -> str:
    from ..discovery._interfaces import parse_interfaces

    try:
        parse_interfaces(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds > 0")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds >= 0")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def peer_options(*, daemon: bool, group: bool = True) -> argparse.ArgumentParser:
    """Flags that configure the peer (the daemon's, or a command's temporary one).

    Without ``group``, the command defines its own ``--group`` (a filter)."""
    parent = argparse.ArgumentParser(add_help=False)
    g = parent.add_argument_group(
        "peer options (each overrides its NET_* variable)"
        if daemon
        else "peer options (this command runs a temporary peer; flags override NET_*)"
    )
    g.add_argument(
        "--name",
        help="peer name shown to others (NET_NAME)"
        if daemon
        else "name of the temporary peer (default: netpeer-COMMAND-PID; NET_NAME is not used)",
    )
    if group:
        g.add_argument(
            "--group",
            help="peer group (NET_GROUP, default 'default')"
            if daemon
            else "group of the temporary peer (NET_GROUP, default 'default')",
        )
    g.add_argument(
        "--hub",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mark the peer as a hub (NET_IS_HUB)",
    )
    g.add_argument("--host", help="address to listen on (NET_HOST, default 0.0.0.0)")
    g.add_argument(
        "--port",
        type=_port,
        help="first port to try, 0 = any (NET_PORT, default 3010)"
        if daemon
        else "port to listen on (default: any free port; NET_PORT is not used)",
    )
    g.add_argument("--port-range", type=positive_int, help="how many ports to try (NET_PORT_RANGE)")
    g.add_argument(
        "--peers",
        type=_address_list,
        action="append",
        metavar="HOST:PORT[,...]",
        help="static peers to link to; repeatable (NET_PEERS)",
    )
    g.add_argument(
        "--discovery",
        choices=("mdns", "static", "off"),
        help=f"how peers are found (NET_DISCOVERY; netpeer's default: {CLI_DEFAULT_DISCOVERY})",
    )
    g.add_argument(
        "--interfaces",
        type=_interfaces,
        metavar="IFACES",
        help="where mDNS advertises and browses: all, loopback, or a list (NET_INTERFACES)",
    )
    g.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        help="log level (NET_LOG_LEVEL; NET_DEV=1 means DEBUG; default "
        + ("INFO)" if daemon else "WARNING)"),
    )
    return parent


def client_options(*, wait: bool = True) -> argparse.ArgumentParser:
    """Flags of the commands that look at the network through a temporary peer."""
    parent = argparse.ArgumentParser(add_help=False)
    g = parent.add_argument_group("finding peers")
    if wait:
        g.add_argument(
            "--wait",
            type=non_negative_float,
            default=1.5,
            metavar="S",
            help="how long to wait for peers to be found (default 1.5 s); with static "
            "peers only, commands go on as soon as all of them answered",
        )
    g.add_argument(
        "--no-follow",
        dest="follow",
        action="store_false",
        help="link only to the peers given or discovered, not to the peers they are linked to",
    )
    return parent


def json_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="machine-readable JSON output")
    return parent


# --- settings --------------------------------------------------------------------------


def static_peers(args: argparse.Namespace) -> list[str] | None:
    if not getattr(args, "peers", None):
        return None
    return [a for group in args.peers for a in group]


def discovery_mode(args: argparse.Namespace) -> str:
    if getattr(args, "discovery", None):
        return str(args.discovery)
    env = os.environ.get("NET_DISCOVERY", "").strip().lower()
    return env or CLI_DEFAULT_DISCOVERY


def overrides(args: argparse.Namespace, *, daemon: bool) -> dict[str, Any]:
    """Settings overrides from the flags (None: from the environment)."""
    name = args.name
    if name is None and not daemon:
        name = f"netpeer-{args.command}-{os.getpid()}"
    port = args.port
    if port is None and not daemon:
        port = 0
    return {
        "name": name,
        "host": args.host,
        "port": port,
        "port_range": args.port_range,
        "group": getattr(args, "group", None),
        "hub": args.hub,
        "peers": static_peers(args),
        "discovery": discovery_mode(args),
        "interfaces": args.interfaces,
        "log_level": args.log_level,
    }


def make_settings(args: argparse.Namespace, *, daemon: bool) -> _settings.Settings:
    """Settings from NET_* and the flags; a bad value is a usage error."""
    try:
        return _settings.Settings.from_env(**overrides(args, daemon=daemon))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def configure_logging(level: str | None, *, default: str) -> None:
    """Log to stderr at ``level`` (else NET_LOG_LEVEL / NET_DEV, else ``default``)."""
    if level is None:
        env = os.environ.get("NET_LOG_LEVEL") or ("DEBUG" if os.environ.get("NET_DEV") else None)
        level = env.upper() if env and env.upper() in LOG_LEVELS else default
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("net").setLevel(level)
    # zeroconf sets its own logger to WARNING; follow the chosen level, but not below WARNING
    numeric = logging.getLevelName(level)
    logging.getLogger("zeroconf").setLevel(max(numeric, logging.WARNING))


# --- arguments of calls and events ------------------------------------------------


def parse_value(text: str) -> Any:
    """A JSON literal (``1``, ``2.5``, ``true``, ``null``, ``"x"``, ``[1, 2]``...), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_kwargs(items: list[str] | None) -> dict[str, Any]:
    """``--kw K=V`` items to a dict; V as in :func:`parse_value`."""
    kwargs: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--kw takes KEY=VALUE, got {item!r}")
        if not key.isidentifier():
            raise UsageError(f"--kw {item!r}: {key!r} is not a valid keyword name")
        if key in kwargs:
            raise UsageError(f"--kw {key} is given twice")
        kwargs[key] = parse_value(raw)
    return kwargs


def add_call_arguments(parser: argparse.ArgumentParser) -> None:
    """``ARG ...`` and ``--kw KEY=VALUE`` (see :func:`parse_value`)."""
    parser.add_argument(
        "args",
        nargs="*",
        metavar="ARG",
        help="positional arguments: JSON literals (1, 2.5, true, null, '\"text\"', "
        "'[1,2]', '{\"a\": 1}'); anything else is a string",
    )
    parser.add_argument(
        "--kw",
        action="append",
        metavar="KEY=VALUE",
        help="a keyword argument (VALUE as for ARG); repeatable",
    )


# --- naming peers ---------------------------------------------------------------------


def is_address(text: str) -> bool:
    try:
        _settings.parse_address(text)
    except ValueError:
        return False
    return True


def match_peer(ref: str, candidates: list[PeerInfo]) -> PeerInfo | None:
    """The peer ``ref`` names among ``candidates``: exact id, address or name, else a
    unique id prefix (at least 4 hex digits). Raises PeerNotFound if ambiguous."""
    for attr in ("id", "address"):
        exact = [c for c in candidates if getattr(c, attr) == ref]
        if exact:
            return exact[0]
    named = [c for c in candidates if c.name == ref]
    if len(named) > 1:
        raise PeerNotFound(
            f"{len(named)} peers are named {ref!r} "
            f"({', '.join(f'{c.address} id {c.id[:8]}' for c in named)}); use an address or id"
        )
    if named:
        return named[0]
    if len(ref) >= 4 and all(ch in "0123456789abcdef" for ch in ref):
        prefixed = [c for c in candidates if c.id.startswith(ref)]
        if len(prefixed) > 1:
            raise PeerNotFound(f"id prefix {ref!r} is ambiguous: {len(prefixed)} peers match")
        if prefixed:
            return prefixed[0]
    return None


# --- the temporary peer ------------------------------------------------------------------


class Client:
    """A temporary peer that finds the network: static seeds, discovery, and (with
    ``follow``) the peers that the peers it reaches are linked to.

    ``infos`` holds the ``info`` of every peer reached (by peer id).
    """

    def __init__(
        self,
        peer: Peer,
        nursery: trio.Nursery,
        seeds: list[str],
        *,
        follow: bool,
        mdns: bool,
    ) -> None:
        self.peer = peer
        self.nursery = nursery
        self.seeds = seeds
        self.follow = follow
        self.mdns = mdns
        self.started = time.monotonic()
        self.infos: dict[str, dict[str, Any]] = {}
        self.info_errors: dict[str, str] = {}
        self.seed_ids: dict[str, str] = {}
        self.seed_errors: dict[str, str] = {}
        self.unreachable: dict[str, str] = {}
        self._tried: set[str] = set()
        self._exploring: set[str] = set()
        self._changed = trio.Event()

    # change notification

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self, timeout: float) -> None:
        """Wait until something changed (a link, an info) or ``timeout`` passed."""
        event = self._changed
        with trio.move_on_after(max(timeout, 0.0)):
            await event.wait()

    async def _watch_links(self) -> None:
        while True:
            for info in self.peer.peers():
                if info.id not in self.infos and info.id not in self._exploring:
                    self.explore(info)
            await self.peer.wait_peers_changed()
            self._notify()

    # exploring

    def start(self) -> None:
        self.nursery.start_soon(self._watch_links)
        for address in self.seeds:
            self.explore(address, seed=True)

    def explore(self, target: PeerInfo | str, *, seed: bool = False) -> None:
        key = target.id if isinstance(target, PeerInfo) else target
        if key in self._exploring:
            return
        self._exploring.add(key)
        self.nursery.start_soon(self._explore, target, key, seed)

    async def _explore(self, target: PeerInfo | str, key: str, seed: bool) -> None:
        try:
            info = await self.peer.remote_info(target, timeout=3.0)
            if not isinstance(info, dict) or not isinstance(info.get("id"), str):
                raise NetError(f"{target} answered info with {type(info).__name__}")
        except (NetError, OSError) as exc:
            why = str(exc) or type(exc).__name__
            if seed:
                self.seed_errors[key] = why
            elif isinstance(target, PeerInfo):
                self.info_errors[target.id] = why
            else:
                self.unreachable[key] = why
            log.debug("exploring %s failed: %s", target, why)
        else:
            self.infos[info["id"]] = info
            self.info_errors.pop(info["id"], None)
            if seed:
                self.seed_ids[key] = info["id"]
                self.seed_errors.pop(key, None)
            if self.follow:
                self._follow(info)
        finally:
            self._exploring.discard(key)
            if seed:
                self.peer.want(key)  # keep it linked (and link it later if it is down now)
            self._notify()

    def _follow(self, info: dict[str, Any]) -> None:
        linked = {p.id for p in self.peer.peers()}
        for link in info.get("peers") or ():
            if not isinstance(link, dict):
                continue
            rid, address = link.get("id"), link.get("address")
            if not isinstance(address, str) or not is_address(address):
                continue
            if rid == self.peer.id or rid in linked or rid in self.infos:
                continue
            if address in self._tried:
                continue
            self._tried.add(address)
            self.explore(address)

    async def refresh(self, timeout: float = 3.0) -> None:
        """Fetch the ``info`` of every linked peer again (and follow new links)."""
        async with trio.open_nursery() as nursery:
            for info in self.peer.peers():
                nursery.start_soon(self._refresh_one, info, timeout)
        self._tried.clear()
        self._notify()

    async def _refresh_one(self, target: PeerInfo, timeout: float) -> None:
        try:
            info = await self.peer.remote_info(target, timeout=timeout)
        except (NetError, OSError) as exc:
            self.info_errors[target.id] = str(exc) or type(exc).__name__
            return
        if isinstance(info, dict) and isinstance(info.get("id"), str):
            self.infos[info["id"]] = info
            if self.follow:
                self._follow(info)

    # state

    def idle(self) -> bool:
        """Every seed tried, nothing being explored, every linked peer's info fetched."""
        if self._exploring:
            return False
        if any(s not in self.seed_ids and s not in self.seed_errors for s in self.seeds):
            return False
        return all(p.id in self.infos or p.id in self.info_errors for p in self.peer.peers())

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def settle(
        self,
        wait: float,
        *,
        mdns_minimum: float | None = None,
        ready: Callable[[], bool] | None = None,
        poll: float | None = None,
    ) -> bool:
        """Wait until the network looks found: ``idle()`` (and ``ready()``), and with
        mDNS discovery at least ``mdns_minimum`` (default: all of ``wait``).
        Returns whether that happened before ``wait`` ran out."""
        deadline = self.started + wait
        minimum = wait if mdns_minimum is None else min(mdns_minimum, wait)
        while True:
            now = time.monotonic()
            discovered = not self.mdns or now - self.started >= minimum
            if discovered and self.idle() and (ready is None or ready()):
                return True
            if now >= deadline:
                return False
            step = deadline - now
            if self.mdns and not discovered:
                step = min(step, self.started + minimum - now)
            if poll is not None:
                step = min(step, poll)
            await self.wait_changed(step)

    def find(self, ref: str) -> PeerInfo | None:
        return match_peer(ref, self.peer.peers())

    async def locate(self, ref: str, wait: float) -> PeerInfo | str:
        """The peer named ``ref`` (address, name, id or id prefix); an address is used as is."""
        if is_address(ref):
            return ref
        deadline = self.started + wait
        grace = deadline + 3.0  # let explorations in progress at the deadline finish
        while True:
            found = self.find(ref)
            if found is not None:
                return found
            now = time.monotonic()
            if not self.mdns and self.idle():
                break  # every static peer (and those they are linked to) answered
            if now >= deadline and (self.idle() or now >= grace):
                break
            await self.wait_changed((deadline if now < deadline else grace) - now)
        known = ", ".join(f"{p.name} ({p.address})" for p in self.peer.peers()) or "none"
        raise Failure(
            f"no peer {ref!r} found{f' within {wait:g} s' if self.mdns else ''}; "
            f"peers found: {known}" + self.hint()
        )

    def hint(self) -> str:
        """What to tell the user when peers are missing."""
        notes = [f"\n  {addr} did not answer: {why}" for addr, why in self.seed_errors.items()]
        if not self.seeds and not self.mdns:
            notes.append(
                "\n  hint: discovery is off and no --peers/NET_PEERS were given: "
                "name peers with --peers HOST:PORT or use --discovery mdns"
            )
        elif not self.peer.peers():
            notes.append(
                "\n  hint: check 'netpeer doctor'; give --peers HOST:PORT, or a longer --wait"
            )
        return "".join(notes)


@contextlib.asynccontextmanager
async def client(args: argparse.Namespace) -> AsyncIterator[Client]:
    """Run the command's temporary peer; stop it (goodbyes sent) at the end."""
    settings = make_settings(args, daemon=False)
    seeds = list(settings.peers)
    settings = settings.replace(peers=())  # the Client dials and keeps the seeds itself
    peer = Peer(settings=settings)

    async def run_peer(*, task_status: trio.TaskStatus[Peer] = trio.TASK_STATUS_IGNORED) -> None:
        # Shielded: when the command is cancelled (Ctrl-C, an error), the peer must still
        # say goodbye on every link before its tasks go; it stops on request_stop below.
        with trio.CancelScope(shield=True):
            await peer.run(task_status=task_status)

    async with trio.open_nursery() as outer:
        try:
            await outer.start(run_peer)
        except BaseException as exc:
            inner = sole_leaf(exc)
            if isinstance(inner, ConfigError):  # e.g. NET_INTERFACES names no interface here
                raise UsageError(str(inner)) from None
            if isinstance(inner, (NetError, OSError, ValueError)):
                raise Failure(f"cannot start a peer: {inner}") from None
            raise
        try:
            async with trio.open_nursery() as nursery:
                session = Client(
                    peer,
                    nursery,
                    seeds,
                    follow=getattr(args, "follow", True),
                    mdns=settings.discovery == "mdns",
                )
                session.start()
                try:
                    yield session
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            peer.request_stop()  # run_peer returns once the goodbyes are sent


def sole_leaf(exc: BaseException) -> BaseException | None:
    """The one real exception inside (nested) exception groups, ignoring cancellations."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves: list[BaseException] = []

    def collect(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                collect(sub)
        elif not isinstance(e, trio.Cancelled):
            leaves.append(e)

    collect(exc)
    return leaves[0] if len(leaves) == 1 else None


# --- running a command --------------------------------------------------------------


def run_trio(main: Callable[[], Awaitable[int]], *, interrupted: int = EXIT_INTERRUPTED) -> int:
    """Run ``main`` under trio; SIGINT/SIGTERM end it cleanly (peers say goodbye)."""
    result: list[int] = []
    got_signal: list[int] = []

    async def wrapper() -> None:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        got_signal.append(signum)
                        nursery.cancel_scope.cancel()
                        return

            async def body() -> None:
                result.append(await main())
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_signals)
            nursery.start_soon(body)

    try:
        trio.run(wrapper)
    except BaseExceptionGroup as group:
        single = sole_leaf(group)
        if single is None:
            raise
        raise single from None
    if result:
        return result[0]
    return interrupted if got_signal else EXIT_FAILED
