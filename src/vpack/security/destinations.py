"""Where users may point the service: the hosts of recorders and custom endpoints.

A user who adds a Hikvision recorder or an S3-compatible endpoint through the API
makes this server open connections to an address of their choosing. Without a
limit, that reaches what only the server should: its own loopback services (the
database, Redis) and the link-local cloud metadata address (169.254.169.254) that
hands out the machine's credentials. The operator lists the networks refused
(VPACK_BLOCKED_NETWORKS); shop LANs and the internet stay open, as recorders live
there.

Host names are resolved once, when the connection is made; every address they
resolve to must be allowed. (A name that later resolves elsewhere is not caught:
operators who need that guarantee should allow only addresses, or firewall.)
"""

from __future__ import annotations

import ipaddress
import socket

from vpack.providers.errors import BadConfig

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[IPNetwork]:
    """Comma-separated CIDRs ("127.0.0.0/8, ::1/128"); ValueError names a bad one."""
    networks = []
    for part in text.split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                message = f"{part.strip()!r} is not a network (use e.g. 10.0.0.0/8)"
                raise ValueError(message) from None
    return networks


def check_destination(host: str, blocked: list[IPNetwork]) -> None:
    """BadConfig if `host`, or any address it resolves to, is in a blocked network.

    Blocking: runs a DNS lookup. A name that does not resolve passes: the
    provider's own check then reports it cannot be reached, and nothing was.
    """
    if not blocked:
        return
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
        for candidate in (address, mapped):
            if candidate is not None and any(candidate in net for net in blocked):
                raise BadConfig(
                    f"{host} ({candidate}) is in a network this server does not let users "
                    "connect to (its own services or cloud metadata); the operator can "
                    "change VPACK_BLOCKED_NETWORKS"
                )
