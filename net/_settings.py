"""Settings of a peer, read from ``NET_*`` environment variables or given directly.

A bad value raises ``ConfigError`` naming the variable and what it accepts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import ConfigError

DEFAULT_PORT = 3010
DEFAULT_PORT_RANGE = 100
#: The longest a request may poll for its reply before sleeping (NET_CALL_SPIN):
#: polling burns CPU, and past a few milliseconds sleeping costs nothing in comparison.
MAX_CALL_SPIN = 0.01

_TRUE = {"1", "true", "yes", "on", ""}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Everything a peer can be configured with. ``from_env`` documents each variable."""

    name: str = ""
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    port_range: int = DEFAULT_PORT_RANGE
    group: str = "default"
    hub: bool = False
    peers: tuple[str, ...] = ()
    discovery: str = "mdns"
    interfaces: str | None = None
    autostart: bool = True
    heartbeat_interval: float = 0.5
    heartbeat_timeout: float = 2.5
    handshake_timeout: float = 5.0
    call_timeout: float = 30.0
    call_spin: float = 0.0005
    max_frame: int = 8 * 1024 * 1024
    max_in_flight: int = 1024
    queue_bytes: int = 16 * 1024 * 1024
    queue_policy: str = "block"
    block_timeout: float = 1.0
    reconnect_min: float = 0.05
    reconnect_max: float = 2.0
    log_level: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.port >= 0 and self.port <= 65535, "port", "an int in 0..65535")
        _check(self.port_range >= 1, "port_range", "an int >= 1")
        _check(self.heartbeat_interval > 0, "heartbeat_interval", "a number > 0")
        _check(
            self.heartbeat_timeout > self.heartbeat_interval,
            "heartbeat_timeout",
            "a number larger than heartbeat_interval",
        )
        _check(self.handshake_timeout > 0, "handshake_timeout", "a number > 0")
        _check(self.call_timeout > 0, "call_timeout", "a number > 0")
        _check(0 <= self.call_spin <= MAX_CALL_SPIN, "call_spin", f"a number in 0..{MAX_CALL_SPIN}")
        _check(1024 <= self.max_frame <= 2**32 - 1, "max_frame", "an int in 1024..2**32-1")
        _check(self.max_in_flight >= 1, "max_in_flight", "an int >= 1")
        _check(self.queue_bytes >= 1024, "queue_bytes", "an int >= 1024")
        _check(self.queue_policy in ("block", "drop"), "queue_policy", "'block' or 'drop'")
        _check(self.block_timeout >= 0, "block_timeout", "a number >= 0")
        _check(
            self.discovery in ("mdns", "static", "off"), "discovery", "'mdns', 'static' or 'off'"
        )
        if not self.name:
            prog = os.path.splitext(os.path.basename(sys.argv[0] or "python"))[0] or "python"
            object.__setattr__(self, "name", f"{prog}-{os.getpid()}")

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``NET_*`` variables; ``overrides`` (not None) win over the environment."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        reader = _Reader(env)
        values["name"] = reader.text("NET_NAME", "")
        values["host"] = reader.text("NET_HOST", "0.0.0.0")
        values["port"] = reader.integer("NET_PORT", DEFAULT_PORT, 0, 65535)
        values["port_range"] = reader.integer("NET_PORT_RANGE", DEFAULT_PORT_RANGE, 1, 65535)
        values["group"] = reader.text("NET_GROUP", "default")
        values["hub"] = reader.boolean("NET_IS_HUB", False)
        values["peers"] = reader.addresses("NET_PEERS")
        values["discovery"] = reader.choice("NET_DISCOVERY", "mdns", ("mdns", "static", "off"))
        values["interfaces"] = env.get("NET_INTERFACES") or None
        values["autostart"] = reader.boolean("NET_AUTOSTART", True)
        values["heartbeat_interval"] = reader.number("NET_HEARTBEAT_INTERVAL", 0.5, 0.001)
        values["heartbeat_timeout"] = reader.number("NET_HEARTBEAT_TIMEOUT", 2.5, 0.002)
        values["handshake_timeout"] = reader.number("NET_HANDSHAKE_TIMEOUT", 5.0, 0.001)
        values["call_timeout"] = reader.number("NET_CALL_TIMEOUT", 30.0, 0.001)
        values["call_spin"] = reader.number("NET_CALL_SPIN", 0.0005, 0.0, MAX_CALL_SPIN)
        values["max_frame"] = reader.integer("NET_MAX_FRAME", 8 * 1024 * 1024, 1024, 2**32 - 1)
        values["max_in_flight"] = reader.integer("NET_MAX_IN_FLIGHT", 1024, 1, 2**20)
        values["queue_bytes"] = reader.integer("NET_QUEUE_BYTES", 16 * 1024 * 1024, 1024, 2**40)
        values["queue_policy"] = reader.choice("NET_QUEUE_POLICY", "block", ("block", "drop"))
        values["block_timeout"] = reader.number("NET_BLOCK_TIMEOUT", 1.0, 0.0)
        level = env.get("NET_LOG_LEVEL") or ("DEBUG" if env.get("NET_DEV") else None)
        if level is not None and level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                f"NET_LOG_LEVEL={level!r} is not valid: use DEBUG, INFO, WARNING or ERROR"
            )
        values["log_level"] = level.upper() if level else None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "peers" in overrides and overrides["peers"] is not None:
            values["peers"] = tuple(str(p) for p in overrides["peers"])  # type: ignore[attr-defined]
        return cls(**values)  # type: ignore[arg-type]


def _check(ok: bool, name: str, expected: str) -> None:
    if not ok:
        raise ConfigError(f"setting {name!r} must be {expected}")


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, var: str, default: str) -> str:
        value = self.env.get(var)
        return default if value is None or value == "" else value

    def integer(self, var: str, default: int, lo: int, hi: int) -> int:
        raw = self.env.get(var)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{var}={raw!r} is not an integer (expected {lo}..{hi})") from None
        if not lo <= value <= hi:
            raise ConfigError(f"{var}={raw!r} is out of range (expected {lo}..{hi})")
        return value

    def number(self, var: str, default: float, lo: float, hi: float = math.inf) -> float:
        raw = self.env.get(var)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{var}={raw!r} is not a number (seconds)") from None
        if not value >= lo or value != value or value == math.inf:
            raise ConfigError(f"{var}={raw!r} must be a finite number >= {lo}")
        if value > hi:
            raise ConfigError(f"{var}={raw!r} is out of range (expected {lo}..{hi} seconds)")
        return value

    def boolean(self, var: str, default: bool) -> bool:
        raw = self.env.get(var)
        if raw is None:
            return default
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{var}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")

    def choice(self, var: str, default: str, allowed: tuple[str, ...]) -> str:
        raw = self.env.get(var)
        if raw is None or raw.strip() == "":
            return default
        low = raw.strip().lower()
        if low not in allowed:
            raise ConfigError(f"{var}={raw!r} is not valid: use one of {', '.join(allowed)}")
        return low

    def addresses(self, var: str) -> tuple[str, ...]:
        raw = self.env.get(var)
        if not raw:
            return ()
        out = []
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                parse_address(part)
            except ValueError as exc:
                raise ConfigError(f"{var}: {exc}") from None
            out.append(part)
        return tuple(out)


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) to ``(host, port)``; ValueError if malformed."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"{text!r} is not host:port")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port must be in 1..65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port
