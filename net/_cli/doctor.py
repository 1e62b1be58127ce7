"""``netpeer doctor``: check what peers need from this host, and explain any problem.

Checks, in order: the ``NET_*`` settings; the interfaces discovery would use
(``NET_INTERFACES``/``--interfaces``), whether each is up and can do multicast
(a test packet to 224.0.0.251 on that interface only, looped back); the TCP
port; the mDNS port; the static peers; and whether an advertisement made here is
seen by a browser here (two throw-away peers, on the chosen interfaces only).

Only the chosen interfaces are ever used: with ``NET_INTERFACES=loopback``
nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import secrets
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from ..errors import ConfigError, NetError
from ..peer import Peer
from . import _common as c
from ._format import dumps, out

HELP = "check interfaces, multicast, ports and discovery, and explain problems"

DESCRIPTION = """\
Check what peers need from this host and explain any problem in plain words,
with what to do about it: the NET_* settings, the interfaces discovery uses
(NET_INTERFACES or --interfaces) and whether multicast works on each, whether
the TCP port can be bound, whether UDP 5353 (mDNS) can be shared, whether the
static peers answer, and whether an advertisement made here is seen here.

Multicast is only sent on the chosen interfaces: use --interfaces loopback to
keep every test packet on this machine. Exit status 0 when nothing failed.
"""

MDNS_GROUP = "224.0.0.251"
MDNS_PORT = 5353
OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "info"

# Linux interface flags (include/uapi/linux/if.h)
IFF_UP, IFF_LOOPBACK, IFF_MULTICAST = 0x1, 0x8, 0x1000


@dataclass
class Check:
    check: str
    status: str
    detail: str
    advice: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "doctor",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[c.json_option(), c.peer_options(daemon=True)],
    )
    p.add_argument(
        "--timeout",
        type=c.positive_float,
        default=3.0,
        metavar="S",
        help="how long to wait for each network test (default 3 s)",
    )
    p.set_defaults(_main=main)
    return p


def main(args: argparse.Namespace) -> int:
    c.configure_logging(args.log_level, default="ERROR")
    return c.run_trio(lambda: Doctor(args).run())


class Doctor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.checks: list[Check] = []
        self.multicast_failed = False

    def add(self, check: Check) -> Check:
        if check.status == FAIL and check.check.startswith("multicast"):
            self.multicast_failed = True
        self.checks.append(check)
        if not self.args.json:
            _print_check(check)
        return check

    async def run(self) -> int:
        if not self.args.json:
            out("netpeer doctor")
        settings = self.check_settings()
        if settings is not None:
            resolved = self.check_interfaces(settings)
            for iface in resolved:
                await self.check_multicast(iface)
            await self.check_port(settings)
            await self.check_static_peers(settings)
            if resolved and self.check_mdns_port():
                await self.check_self_advert(settings)
        failed = [ch for ch in self.checks if ch.status == FAIL]
        if self.args.json:
            out(
                dumps(
                    {
                        "ok": not failed,
                        "checks": [
                            {
                                "check": ch.check,
                                "status": ch.status.lower(),
                                "detail": ch.detail,
                                "advice": ch.advice,
                                **({"data": ch.data} if ch.data else {}),
                            }
                            for ch in self.checks
                        ],
                    },
                    indent=2,
                )
            )
        else:
            warned = [ch for ch in self.checks if ch.status == WARN]
            out("")
            if failed:
                out(
                    f"{len(failed)} problem{'s' if len(failed) != 1 else ''} found"
                    + (
                        f", {len(warned)} warning{'s' if len(warned) != 1 else ''}"
                        if warned
                        else ""
                    )
                    + "."
                )
            elif warned:
                out(f"no problems, {len(warned)} warning{'s' if len(warned) != 1 else ''}.")
            else:
                out("everything looks fine.")
        return c.EXIT_FAILED if failed else c.EXIT_OK

    # --- settings ----------------------------------------------------------------

    def check_settings(self) -> Any:
        try:
            settings = c.make_settings(self.args, daemon=True)
        except c.UsageError as exc:
            self.add(
                Check(
                    "settings",
                    FAIL,
                    f"the configuration is not valid: {exc}",
                    "fix or unset that NET_* variable (see docs/configuration.md)",
                )
            )
            return None
        self.add(
            Check(
                "settings",
                OK,
                f"name {settings.name}, group {settings.group!r}{' (hub)' if settings.hub else ''}, "
                f"host {settings.host}, port {settings.port} (+{settings.port_range - 1}), "
                f"discovery {settings.discovery}, interfaces {settings.interfaces or 'all'}"
                + (f", static peers {', '.join(settings.peers)}" if settings.peers else ""),
                data={
                    "name": settings.name,
                    "group": settings.group,
                    "host": settings.host,
                    "port": settings.port,
                    "discovery": settings.discovery,
                    "interfaces": settings.interfaces or "all",
                    "peers": list(settings.peers),
                },
            )
        )
        if settings.discovery != "mdns":
            self.add(
                Check(
                    "discovery",
                    INFO,
                    f"mDNS discovery is turned off (NET_DISCOVERY={settings.discovery}): peers "
                    "are only found through static peer lists"
                    + ("" if settings.peers else ", and none is given"),
                    "" if settings.peers else "set NET_PEERS=host:port,... or NET_DISCOVERY=mdns",
                )
            )
        return settings

    # --- interfaces ----------------------------------------------------------------

    def check_interfaces(self, settings: Any) -> list[Any]:
        from ..discovery._interfaces import parse_interfaces, resolve_interfaces

        value = settings.interfaces
        try:
            choice = parse_interfaces(value)
            resolved = resolve_interfaces(choice)
        except ValueError as exc:
            self.add(
                Check(
                    "interfaces",
                    FAIL,
                    str(exc),
                    "set NET_INTERFACES (or --interfaces) to interfaces this host has; "
                    "'ip -4 addr' lists them; 'loopback' keeps peers on this machine",
                )
            )
            return []
        names = ", ".join(f"{r.name} ({', '.join(r.addresses)})" for r in resolved)
        only_loopback = all(r.loopback for r in resolved)
        if choice.mode == "all" and only_loopback:
            self.add(
                Check(
                    "interfaces",
                    WARN,
                    f"this host has no network interface with an IPv4 address besides "
                    f"loopback: {names}; only peers on this machine can be found",
                    "connect the machine to the network (check 'ip -4 addr'), or ignore "
                    "this if all peers run here",
                    data={"interfaces": [_iface_dict(r) for r in resolved]},
                )
            )
        else:
            self.add(
                Check(
                    "interfaces",
                    OK,
                    f"discovery uses {names} (NET_INTERFACES={value or 'all'})",
                    data={"interfaces": [_iface_dict(r) for r in resolved]},
                )
            )
        return resolved

    async def check_multicast(self, iface: Any) -> None:
        name = f"multicast on {iface.name}"
        flags = _link_flags(iface.name)
        if flags is not None:
            if not flags & IFF_UP:
                self.add(
                    Check(
                        name,
                        FAIL,
                        f"interface {iface.name} is down",
                        f"bring it up ('ip link set {iface.name} up') or choose other "
                        "interfaces with NET_INTERFACES",
                    )
                )
                return
            if not flags & IFF_MULTICAST and not flags & IFF_LOOPBACK:
                self.add(
                    Check(
                        name,
                        FAIL,
                        f"interface {iface.name} has multicast turned off",
                        f"turn it on ('ip link set {iface.name} multicast on'), or use static "
                        "peers (NET_PEERS) instead of discovery",
                    )
                )
                return
        address = iface.addresses[0]
        try:
            elapsed = await trio.to_thread.run_sync(
                _multicast_roundtrip, address, self.args.timeout
            )
        except OSError as exc:
            self.add(
                Check(
                    name,
                    FAIL,
                    f"cannot send or receive multicast on {iface.name} ({address}): {_oserror(exc)}",
                    _multicast_advice(iface.name, exc),
                )
            )
            return
        if elapsed is None:
            self.add(
                Check(
                    name,
                    FAIL,
                    f"a test packet sent to {MDNS_GROUP} on {iface.name} ({address}) did not "
                    f"come back within {self.args.timeout:g} s",
                    "a firewall may drop multicast: allow UDP to 224.0.0.251 (port 5353 "
                    "for mDNS) on this interface, e.g. 'nft list ruleset' / 'iptables -L' to "
                    "check; or use static peers (NET_PEERS)",
                )
            )
            return
        state = _operstate(iface.name)
        no_carrier = state in ("down", "lowerlayerdown", "notpresent", "dormant")
        self.add(
            Check(
                name,
                WARN if no_carrier else OK,
                f"{address}{f' (link state: {state})' if no_carrier else ''}: a test packet to "
                f"{MDNS_GROUP} came back in {elapsed * 1000:.1f} ms",
                f"{iface.name} has no carrier: is the cable plugged in, the Wi-Fi connected?"
                if no_carrier
                else "",
            )
        )

    # --- ports ----------------------------------------------------------------------

    async def check_port(self, settings: Any) -> bool:
        host = settings.host or "0.0.0.0"
        first, count = settings.port, settings.port_range
        if first == 0:
            self.add(Check("port", OK, "NET_PORT=0: the peer takes any free TCP port"))
            return True
        taken: list[int] = []
        last_error: OSError | None = None
        for port in range(first, min(first + count, 65536)):
            try:
                _bind_tcp(host, port)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    self.add(
                        Check(
                            "port",
                            FAIL,
                            f"cannot listen on {host}: it is not an address of this host",
                            "set NET_HOST (or --host) to an address of this host, or 0.0.0.0",
                        )
                    )
                    return False
                taken.append(port)
                last_error = exc
                continue
            if not taken:
                self.add(Check("port", OK, f"TCP {host}:{port} is free"))
                return True
            who = await self._who_is_on(host, first)
            self.add(
                Check(
                    "port",
                    INFO if who.startswith(" by the peer") else WARN,
                    f"TCP port {first} is taken{who}; the peer will use port {port} "
                    f"(the first free one of {first}..{first + count - 1})",
                    "fine if another peer runs on this host; otherwise set NET_PORT to a free "
                    "port, or stop the program that holds it ('ss -ltnp' shows it)",
                    data={"taken": taken, "will_use": port},
                )
            )
            return True
        self.add(
            Check(
                "port",
                FAIL,
                f"no free TCP port in {first}..{first + count - 1} on {host}: {_oserror(last_error)}",
                "set NET_PORT to a free port (or 0 for any), or a larger NET_PORT_RANGE; "
                "'ss -ltnp' shows what holds the ports",
            )
        )
        return False

    async def _who_is_on(self, host: str, port: int) -> str:
        target_host = "127.0.0.1" if host in ("0.0.0.0", "", "*") else host
        address = f"{target_host}:{port}"
        try:
            async with Peer(
                f"netpeer-doctor-{os.getpid()}", port=0, host="127.0.0.1", discovery="off", peers=()
            ) as probe:
                info = await probe.remote_info(address, timeout=min(self.args.timeout, 2.0))
        except (NetError, OSError):
            return " (not by a net peer)"
        except BaseExceptionGroup as group:
            if isinstance(c.sole_leaf(group), (NetError, OSError)):
                return " (not by a net peer)"
            raise
        if isinstance(info, dict):
            return f" by the peer {info.get('name')!r} (pid {info.get('pid')})"
        return ""

    def check_mdns_port(self) -> bool:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("", MDNS_PORT))
        except OSError as exc:
            advice = "another program holds UDP port 5353 exclusively; " + (
                "as a non-root user this may also be a permission problem"
                if exc.errno == errno.EACCES
                else "mDNS responders (avahi, systemd-resolved, zeroconf) normally share it: "
                "'ss -lunp sport = :5353' shows the holder; turn its mDNS off or use static peers"
            )
            self.add(
                Check("mDNS port", FAIL, f"cannot bind UDP port 5353: {_oserror(exc)}", advice)
            )
            return False
        finally:
            sock.close()
        self.add(Check("mDNS port", OK, "UDP port 5353 can be shared with other mDNS programs"))
        return True

    # --- peers ------------------------------------------------------------------------

    async def check_static_peers(self, settings: Any) -> None:
        if not settings.peers:
            return
        async with Peer(
            f"netpeer-doctor-{os.getpid()}",
            port=0,
            host=settings.host,
            group=settings.group,
            discovery="off",
            peers=(),
        ) as probe:
            for address in settings.peers:
                started = time.monotonic()
                try:
                    info = await probe.remote_info(address, timeout=self.args.timeout)
                except (NetError, OSError) as exc:
                    self.add(
                        Check(
                            f"static peer {address}",
                            FAIL,
                            f"{address} does not answer: {exc}",
                            "check that a peer runs there ('netpeer run' on that host), that the "
                            "address and port are right, and that no firewall blocks TCP to it",
                        )
                    )
                    continue
                name = info.get("name") if isinstance(info, dict) else "?"
                self.add(
                    Check(
                        f"static peer {address}",
                        OK,
                        f"{address} is the peer {name!r}, answered in "
                        f"{(time.monotonic() - started) * 1000:.0f} ms",
                    )
                )

    async def check_self_advert(self, settings: Any) -> None:
        """Two throw-away peers on the chosen interfaces: does B's browser see A's advert?"""
        from ..discovery._interfaces import parse_interfaces
        from ..discovery._mdns import Advert, FoundPeer, MdnsDiscovery
        from ..protocol import PROTOCOL_VERSION

        name = "self-advertisement"
        choice = parse_interfaces(settings.interfaces)
        seen: dict[str, FoundPeer] = {}
        found_a = trio.Event()
        timeout = self.args.timeout
        try:
            async with trio.open_nursery() as nursery:
                # Real peers behind the adverts, so that whoever connects gets a proper answer.
                a = Peer(
                    f"netpeer-doctor-{os.getpid()}",
                    port=0,
                    discovery="off",
                    peers=(),
                    group=settings.group,
                )
                b = Peer(
                    f"netpeer-doctor-probe-{os.getpid()}",
                    port=0,
                    discovery="off",
                    peers=(),
                    group=settings.group,
                )
                await nursery.start(a.run)
                await nursery.start(b.run)
                assert a.port is not None and b.port is not None

                def on_found(peer: FoundPeer) -> None:
                    seen[peer.peer_id] = peer
                    if peer.peer_id == a.id:
                        found_a.set()

                browser = MdnsDiscovery(
                    Advert(b.id, b.name, settings.group, False, b.port, PROTOCOL_VERSION), choice
                )
                advertiser = MdnsDiscovery(
                    Advert(a.id, a.name, settings.group, False, a.port, PROTOCOL_VERSION), choice
                )
                with trio.fail_after(15):
                    await nursery.start(browser.run, on_found, lambda _id: None)
                browsing_since = trio.current_time()
                started = time.monotonic()
                with trio.fail_after(15):
                    await nursery.start(advertiser.run, lambda _p: None, lambda _id: None)
                with trio.move_on_after(timeout):
                    await found_a.wait()
                elapsed = time.monotonic() - started
                if found_a.is_set():
                    # give the other peers time to answer the browser's first query
                    # (zeroconf delays queries and answers by up to ~0.25 s; more on
                    # a loaded machine)
                    await trio.sleep_until(browsing_since + min(1.5, max(timeout, 0.5)))
                nursery.cancel_scope.cancel()
                a.request_stop()
                b.request_stop()
        except (OSError, ValueError, ConfigError) as exc:
            self.add(Check(name, FAIL, f"mDNS could not start: {exc}", _mdns_advice(exc)))
            return
        except BaseExceptionGroup as group:
            leaf = c.sole_leaf(group)
            if isinstance(leaf, trio.TooSlowError):
                self.add(
                    Check(
                        name,
                        FAIL,
                        "mDNS did not start within 15 s",
                        "zeroconf could not open its sockets in time: check 'netpeer doctor --log-level DEBUG'",
                    )
                )
                return
            if isinstance(leaf, (OSError, ValueError, NetError)):
                self.add(Check(name, FAIL, f"mDNS could not start: {leaf}", _mdns_advice(leaf)))
                return
            raise
        others = [p for pid, p in seen.items() if pid != a.id]
        listing = ", ".join(
            f"{p.name} ({p.addresses[0]}:{p.port})" for p in sorted(others, key=lambda p: p.name)
        )
        data = {
            "others": [
                {
                    "id": p.peer_id,
                    "name": p.name,
                    "group": p.group,
                    "addresses": list(p.addresses),
                    "port": p.port,
                }
                for p in others
            ]
        }
        if a.id in seen:
            addrs = ", ".join(seen[a.id].addresses)
            self.add(
                Check(
                    name,
                    OK,
                    f"a browser on this host saw this host's advertisement in "
                    f"{elapsed * 1000:.0f} ms (addresses {addrs})",
                    data={
                        "seconds": round(elapsed, 4),
                        "addresses": list(seen[a.id].addresses),
                        **data,
                    },
                )
            )
        else:
            self.add(
                Check(
                    name,
                    FAIL,
                    f"a browser on this host did not see this host's advertisement within "
                    f"{timeout:g} s",
                    "fix the multicast problem above first"
                    if self.multicast_failed
                    else "multicast works but mDNS answers are lost: a firewall may block UDP "
                    "port 5353, or another mDNS program interferes; try 'netpeer doctor "
                    "--log-level DEBUG', or use static peers (NET_PEERS)",
                    data=data,
                )
            )
        self.add(
            Check(
                "peers visible",
                INFO,
                f"{len(others)} other peer{'s' if len(others) != 1 else ''} advertised on these "
                f"interfaces{': ' + listing if listing else ''}",
                data=data,
            )
        )


# --- helpers ---------------------------------------------------------------------------


def _iface_dict(r: Any) -> dict[str, Any]:
    return {"name": r.name, "addresses": list(r.addresses), "loopback": r.loopback}


def _link_flags(name: str) -> int | None:
    """The interface's flags (Linux /sys), or None where unknown."""
    try:
        with open(f"/sys/class/net/{name}/flags") as f:
            return int(f.read().strip(), 16)
    except (OSError, ValueError):
        return None


def _operstate(name: str) -> str:
    """The interface's operational state (Linux /sys: up, down, unknown...), or ''."""
    try:
        with open(f"/sys/class/net/{name}/operstate") as f:
            return f.read().strip()
    except OSError:
        return ""


def _bind_tcp(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("" if host in ("0.0.0.0", "*") else host, port))
        sock.listen(1)


def _multicast_roundtrip(address: str, timeout: float) -> float | None:
    """Send a packet to 224.0.0.251 out of the interface with ``address`` (looped back to
    ourselves) and receive it on a socket that joined the group on that interface.
    Returns the time it took, or None if it never came. Raises OSError."""
    token = b"netpeer-doctor " + secrets.token_hex(8).encode()
    group = socket.inet_aton(MDNS_GROUP)
    local = socket.inet_aton(address)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rx.bind((MDNS_GROUP, 0))
        port = rx.getsockname()[1]
        rx.setsockopt(
            socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", group, local)
        )
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, local)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        started = time.monotonic()
        tx.sendto(token, (MDNS_GROUP, port))
        deadline = started + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            rx.settimeout(remaining)
            try:
                data, _ = rx.recvfrom(2048)
            except TimeoutError:
                return None
            if data == token:
                return time.monotonic() - started
    finally:
        rx.close()
        tx.close()


def _oserror(exc: BaseException | None) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        name = errno.errorcode.get(exc.errno or 0, "")
        return f"{exc.strerror}{f' ({name})' if name else ''}"
    return str(exc)


def _multicast_advice(iface: str, exc: OSError) -> str:
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return (
            f"{iface} has no route for multicast: is it up and configured? "
            f"('ip link show {iface}', 'ip route')"
        )
    if exc.errno == errno.ENODEV:
        return f"{iface} disappeared or cannot do multicast ('ip link show {iface}')"
    if exc.errno in (errno.EPERM, errno.EACCES):
        return "a firewall or security policy forbids it: allow UDP to 224.0.0.251"
    return f"check 'ip link show {iface}' (UP, MULTICAST) and the firewall"


def _mdns_advice(exc: BaseException) -> str:
    if isinstance(exc, ValueError):
        return "fix NET_INTERFACES (or --interfaces)"
    return (
        "zeroconf could not open UDP port 5353 on the chosen interfaces: check the "
        "checks above, and that no program holds port 5353 exclusively"
    )


def _print_check(check: Check) -> None:
    mark = {OK: "ok  ", WARN: "warn", FAIL: "FAIL", INFO: "info"}[check.status]
    out(f"  {mark}  {check.check}: {check.detail}")
    if check.advice and check.status in (WARN, FAIL):
        out(f"        what to do: {check.advice}")
