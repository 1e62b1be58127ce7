"""The peer layer: the ``Peer``, its links to remote peers, and what it returns."""

from ._peer import Peer, PeerRef
from ._remote import DeliveryReport, PeerInfo

__all__ = ["DeliveryReport", "Peer", "PeerInfo", "PeerRef"]
