"""net: peer-to-peer pub/sub and remote calls for Python processes.

Processes find each other (static lists or mDNS), call each other's functions
and broadcast events, over msgpack on persistent TCP links, on trio.
``import net`` has no side effects: no socket, no thread, nothing sent.
"""

from ._api import (
    connect,
    default_peer,
    event,
    flag,
    info,
    null,
    pass_through,
    peer_group,
    peers,
    start,
    stop,
    subscribe,
)
from ._settings import Settings
from ._version import __version__
from .errors import (
    CallTimeout,
    ConfigError,
    NetError,
    NotRunning,
    PeerNotFound,
    PeerUnavailable,
    ProtocolError,
    RemoteError,
    RequestRejected,
    UnknownConnection,
)
from .peer import DeliveryReport, Peer, PeerInfo
from .registry import INVALID_CONNECTION, NULL, Flag

__all__ = [
    "INVALID_CONNECTION",
    "NULL",
    "CallTimeout",
    "ConfigError",
    "DeliveryReport",
    "Flag",
    "NetError",
    "NotRunning",
    "Peer",
    "PeerInfo",
    "PeerNotFound",
    "PeerUnavailable",
    "ProtocolError",
    "RemoteError",
    "RequestRejected",
    "Settings",
    "UnknownConnection",
    "__version__",
    "connect",
    "default_peer",
    "event",
    "flag",
    "info",
    "null",
    "pass_through",
    "peer_group",
    "peers",
    "start",
    "stop",
    "subscribe",
]
