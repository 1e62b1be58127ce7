"""The peer layer: the ``Peer``, its links to remote peers, and what it returns."""

from ._base import PeerRef
from ._peer import Peer
from ._remote import DeliveryReport, PeerInfo

__all__ = ["DeliveryReport", "Peer", "PeerInfo", "PeerRef"]
