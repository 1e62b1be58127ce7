"""Finding peers: mDNS (python-zeroconf bridged into trio) and interface choice.

The peer layer starts ``MdnsDiscovery`` when ``NET_DISCOVERY=mdns`` (the
default) and links to every peer it reports; liveness comes from those links,
not from mDNS (docs/discovery.md).
"""

from ._interfaces import InterfaceChoice, parse_interfaces, resolve_addresses
from ._mdns import SERVICE_TYPE, Advert, FoundPeer, MdnsDiscovery

__all__ = [
    "SERVICE_TYPE",
    "Advert",
    "FoundPeer",
    "InterfaceChoice",
    "MdnsDiscovery",
    "parse_interfaces",
    "resolve_addresses",
]
