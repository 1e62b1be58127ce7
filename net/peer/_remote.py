"""Objects users get back: ``PeerInfo`` (a remote peer) and ``DeliveryReport``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._peer import Peer


class PeerInfo:
    """A remote peer as this peer knows it.

    Pass it as ``peer=`` to a connected function, or call the remote's
    connections as attributes: ``info.add(1, 2)`` runs ``add`` on that peer
    (synchronously; use ``await info.acall("add", 1, 2)`` from trio code).
    """

    __slots__ = ("_local", "addresses", "alive", "group", "host", "hub", "id", "name", "port")

    def __init__(
        self,
        id: str,
        name: str,
        host: str,
        port: int,
        group: str,
        hub: bool,
        *,
        alive: bool = True,
        addresses: tuple[str, ...] = (),
        local: Peer | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.host = host
        self.port = port
        self.group = group
        self.hub = hub
        self.alive = alive
        self.addresses = addresses
        self._local = local

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __repr__(self) -> str:
        state = "" if self.alive else " dead"
        return f"<PeerInfo {self.name} {self.address} group={self.group}{' hub' if self.hub else ''}{state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PeerInfo) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "address": self.address,
            "group": self.group,
            "hub": self.hub,
            "alive": self.alive,
        }

    def _require_local(self) -> Peer:
        if self._local is None:
            raise RuntimeError("this PeerInfo is not bound to a local peer")
        return self._local

    def call(self, connection: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Run ``connection`` on this peer and return its result (blocking)."""
        return self._require_local().call_sync(self, connection, *args, timeout=timeout, **kwargs)

    async def acall(
        self, connection: str, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Any:
        """Run ``connection`` on this peer and return its result (in trio code)."""
        return await self._require_local().call(self, connection, *args, timeout=timeout, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def remote_connection(*args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
            return self.call(name, *args, timeout=timeout, **kwargs)

        remote_connection.__name__ = name
        return remote_connection


@dataclass
class DeliveryReport:
    """Who got an event: ``delivered`` acknowledged it, ``failed`` did not (with why),
    ``pruned`` were dropped from the subscription table while delivering."""

    event: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    delivered: list[PeerInfo] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.pruned

    def __len__(self) -> int:
        return len(self.delivered)
