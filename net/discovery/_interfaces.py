"""Which network interfaces discovery uses: the ``NET_INTERFACES`` setting.

``parse_interfaces`` turns the environment value into an :class:`InterfaceChoice`
(pure, no I/O); ``resolve_interfaces`` / ``resolve_addresses`` look the choice up
on this host (with ``ifaddr``, a zeroconf dependency) and give concrete IPv4
addresses. IPv6 is not used.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

import ifaddr

__all__ = [
    "ALL",
    "ENV_VAR",
    "LOOPBACK",
    "InterfaceChoice",
    "ResolvedInterface",
    "parse_interfaces",
    "resolve_addresses",
    "resolve_interfaces",
]

ENV_VAR = "NET_INTERFACES"

_ACCEPTED = (
    "accepted: 'all' (the default: every IPv4 address of this host), "
    "'loopback' or 'lo' (127.0.0.1 only), or a comma-separated list of "
    "interface names (e.g. eth0) and/or IPv4 addresses (e.g. 192.168.1.5)"
)

# Linux names are at most 15 bytes; Windows adapter names are GUIDs in braces.
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.:@{}-]{1,64}")
_IPV4_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_LOOPBACK_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class InterfaceChoice:
    """Parsed ``NET_INTERFACES``.

    ``mode`` is ``"all"`` (every IPv4 interface address of the host),
    ``"loopback"`` (127.0.0.1 only) or ``"list"``, in which case ``names`` holds
    interface names and ``addresses`` IPv4 addresses, as given (deduplicated).
    """

    mode: Literal["all", "loopback", "list"]
    names: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.mode != "list":
            return self.mode
        return ",".join((*self.names, *self.addresses))


ALL = InterfaceChoice("all")
LOOPBACK = InterfaceChoice("loopback")


def _bad(value: str | None, why: str) -> ValueError:
    return ValueError(f"{ENV_VAR}={value!r} is not valid: {why}; {_ACCEPTED}")


def parse_interfaces(value: str | None) -> InterfaceChoice:
    """Parse ``NET_INTERFACES``.

    Unset, empty or ``"all"`` -> every IPv4 interface address of the host (what a
    LAN user wants); ``"loopback"``/``"lo"`` -> 127.0.0.1 only; otherwise a comma
    list of interface names (``eth0``) and/or IPv4 addresses. Keywords are
    case-insensitive; blanks around items are ignored. A bad value raises
    ``ValueError`` naming ``NET_INTERFACES`` and saying what is accepted. Whether
    the names and addresses exist on this host is checked by
    :func:`resolve_interfaces`, not here.
    """
    if value is None:
        return ALL
    text = value.strip()
    if text.lower() in ("", "all"):
        return ALL
    if text.lower() in ("loopback", "lo"):
        return LOOPBACK
    names: list[str] = []
    addresses: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise _bad(value, "empty item in the list")
        if item.lower() in ("all", "loopback"):
            raise _bad(value, f"{item!r} must be used alone, not in a list")
        if _IPV4_RE.fullmatch(item):
            try:
                addr = ipaddress.IPv4Address(item)
            except ValueError:
                raise _bad(value, f"{item!r} is not a valid IPv4 address") from None
            if (
                addr.is_unspecified
                or addr.is_multicast
                or addr == ipaddress.IPv4Address("255.255.255.255")
            ):
                raise _bad(value, f"{item} cannot be an interface address")
            if str(addr) not in addresses:
                addresses.append(str(addr))
            continue
        if ":" in item:
            try:
                ipaddress.IPv6Address(item.split("%", 1)[0])
            except ValueError:
                pass
            else:
                raise _bad(value, f"{item!r}: IPv6 addresses are not supported")
        if not _IFNAME_RE.fullmatch(item):
            raise _bad(value, f"{item!r} is neither an interface name nor an IPv4 address")
        if item not in names:
            names.append(item)
    return InterfaceChoice("list", tuple(names), tuple(addresses))


@dataclass(frozen=True)
class ResolvedInterface:
    """One interface of this host as discovery uses it.

    ``addresses`` are the chosen IPv4 addresses on it (first one is used to join
    the multicast group), ``networks`` the subnets those addresses are in.
    """

    name: str
    addresses: tuple[str, ...]
    networks: tuple[ipaddress.IPv4Network, ...]
    loopback: bool


def _host_ipv4() -> list[tuple[str, list[tuple[str, int]]]]:
    """(adapter name, [(address, prefix)]) for every adapter with IPv4."""
    result: list[tuple[str, list[tuple[str, int]]]] = []
    for adapter in ifaddr.get_adapters():
        ips = [(ip.ip, ip.network_prefix) for ip in adapter.ips if isinstance(ip.ip, str)]
        result.append((adapter.name, ips))
    return result


def _make(name: str, ips: list[tuple[str, int]]) -> ResolvedInterface:
    addrs = tuple(a for a, _ in ips)
    nets = tuple(ipaddress.IPv4Network(f"{a}/{p}", strict=False) for a, p in ips)
    loopback = all(ipaddress.IPv4Address(a).is_loopback for a in addrs)
    return ResolvedInterface(name, addrs, nets, loopback)


def resolve_interfaces(choice: InterfaceChoice) -> list[ResolvedInterface]:
    """Look ``choice`` up on this host: one entry per interface, loopback last.

    Raises ``ValueError`` naming ``NET_INTERFACES`` when a named interface does
    not exist or has no IPv4 address, when an address is not one of this host's,
    or when nothing is left.
    """
    host = _host_ipv4()
    result: list[tuple[str, list[tuple[str, int]]]] = []
    if choice.mode == "all":
        result = [(name, ips) for name, ips in host if ips]
    elif choice.mode == "loopback":
        for name, ips in host:
            lo = [(a, p) for a, p in ips if a == _LOOPBACK_ADDRESS]
            if lo:
                result = [(name, lo)]
                break
    else:
        wanted: dict[str, list[tuple[str, int]]] = {}
        order: list[str] = []
        for want in choice.names:
            found = [(name, ips) for name, ips in host if name == want]
            if not found:
                known = ", ".join(sorted(name for name, _ in host)) or "none"
                raise ValueError(
                    f"{ENV_VAR}={choice}: no interface named {want!r} on this host "
                    f"(interfaces: {known}); {_ACCEPTED}"
                )
            name, ips = found[0]
            if not ips:
                raise ValueError(f"{ENV_VAR}={choice}: interface {want!r} has no IPv4 address")
            if name not in wanted:
                order.append(name)
                wanted[name] = []
            for ip in ips:
                if ip not in wanted[name]:
                    wanted[name].append(ip)
        for want_addr in choice.addresses:
            owner = [(name, ip) for name, ips in host for ip in ips if ip[0] == want_addr]
            if not owner:
                known = ", ".join(a for _, ips in host for a, _ in ips) or "none"
                raise ValueError(
                    f"{ENV_VAR}={choice}: {want_addr} is not an address of this host "
                    f"(IPv4 addresses: {known})"
                )
            name, ip = owner[0]
            if name not in wanted:
                order.append(name)
                wanted[name] = []
            if ip not in wanted[name]:
                wanted[name].append(ip)
        result = [(name, wanted[name]) for name in order]
    if not result:
        raise ValueError(f"{ENV_VAR}={choice}: this host has no matching IPv4 address")
    resolved = [_make(name, ips) for name, ips in result]
    # Stable: real interfaces in host order, then loopback.
    return sorted(resolved, key=lambda r: r.loopback)


def resolve_addresses(choice: InterfaceChoice) -> list[str]:
    """The concrete IPv4 addresses ``choice`` stands for on this host.

    These are the addresses discovery listens on and advertises (each one only on
    its own interface); the TCP server should accept connections on all of them
    (binding ``0.0.0.0`` is fine for ``all``).
    """
    return [a for iface in resolve_interfaces(choice) for a in iface.addresses]
