"""Network checks: webhook URL validation (no link-local or cloud-metadata targets), URLs safe to log
(no credentials, no query), and source-address allowlists for protocols without authentication
(Asterisk AudioSocket)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from speechsvc.errors import Forbidden

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance-metadata endpoints that are not link-local (AWS IPv6, Alibaba, Oracle legacy).
METADATA_ADDRESSES = {ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192")}
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"}


def safe_url(url: str) -> str:
    """``scheme://host[:port]/path`` with user, password, query and fragment removed: for logs and errors."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _forbidden_address(address: IpAddress, allow_link_local: bool) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _forbidden_address(address.ipv4_mapped, allow_link_local)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local and not allow_link_local:
        return "a link-local address (169.254.0.0/16, fe80::/10: cloud metadata lives there)"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "a multicast, unspecified or reserved address"
    return None


def check_webhook_url(url: str, allow_link_local: bool = False, resolve: bool = True) -> str:
    """Validate a webhook URL; returns it unchanged.

    http(s) only; the host must not be, nor resolve to, a link-local, metadata, multicast or unspecified
    address (``allow_link_local`` lifts the link-local rule only). Loopback and private networks are allowed:
    an operator's intranet receiver is the common case on offline sites.

    Raises:
        Forbidden: with the reason (the URL in it is :func:`safe_url`).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Forbidden("webhook URL is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Forbidden(f"webhook URL {safe_url(url)} must be http(s)://host/...")
    if host.lower().rstrip(".") in METADATA_HOSTS:
        raise Forbidden(f"webhook URL {safe_url(url)} names a cloud metadata host")
    try:
        addresses: Iterable[IpAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return url
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise Forbidden(f"webhook host of {safe_url(url)} does not resolve: {e}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        reason = _forbidden_address(address, allow_link_local)
        if reason is not None:
            raise Forbidden(f"webhook URL {safe_url(url)} resolves to {reason}")
    return url


class SourceAllowlist:
    """Networks a peer may connect from (CIDRs). For protocols that carry no credentials (AudioSocket)."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def allows(self, peer: str | None) -> bool:
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def check(self, peer: str | None) -> None:
        """Raises:
        Forbidden: ``peer`` is not in an allowed network.
        """
        if not self.allows(peer):
            raise Forbidden(f"source address {peer} is not in the allowed networks")


def is_loopback_host(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
