"""Exceptions raised by net. Every error a user can see derives from ``NetError``."""

from __future__ import annotations


class NetError(Exception):
    """Base class of every error raised by net."""


class ConfigError(NetError, ValueError):
    """A setting (a ``NET_*`` variable, a CLI flag or an argument) has a bad value."""


class ProtocolError(NetError):
    """The remote side broke the wire protocol; ``code`` says how (see docs/protocol.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PeerUnavailable(NetError, ConnectionError):
    """No link to the requested peer could be made or kept (refused, dead, timed out)."""


class PeerNotFound(NetError, LookupError):
    """A peer was named (by name, id or address) that is not known."""


class CallTimeout(NetError, TimeoutError):
    """A remote call did not answer within its ``timeout``."""


class UnknownConnection(NetError, LookupError):
    """The remote peer has no connection of that name; ``offered`` lists what it has."""

    def __init__(self, connection: str, peer: str, offered: list[str]) -> None:
        listing = ", ".join(sorted(offered)) or "(none)"
        super().__init__(f"peer {peer} has no connection {connection!r}; it offers: {listing}")
        self.connection = connection
        self.peer = peer
        self.offered = sorted(offered)


class RemoteError(NetError):
    """A remote function raised: carries the remote type name, message and traceback."""

    def __init__(self, type_name: str, message: str, traceback: str, peer: str = "") -> None:
        where = f" on {peer}" if peer else ""
        super().__init__(f"{type_name}{where}: {message}")
        self.type_name = type_name
        self.remote_message = message
        self.remote_traceback = traceback
        self.peer = peer

    def __str__(self) -> str:
        base = super().__str__()
        if self.remote_traceback:
            return f"{base}\n--- remote traceback ---\n{self.remote_traceback.rstrip()}"
        return base


class RequestRejected(NetError):
    """The remote peer refused a request (bad request, too many in flight, shutting down)."""

    def __init__(self, code: str, message: str, peer: str = "") -> None:
        super().__init__(f"{code} from {peer or 'peer'}: {message}")
        self.code = code
        self.remote_message = message
        self.peer = peer


class NotRunning(NetError, RuntimeError):
    """The peer is not started (or already stopped) and the operation needs it running."""
