"""Where a webhook or a back-channel logout notice may be sent: public addresses only, unless the operator allows
private ones (SSRF guard).

The host is resolved once per delivery, every address it resolves to is checked, and the connection is then made to
the checked address (the URL keeps its host for the Host header and TLS), so a DNS answer that changes between the
check and the connection cannot point a delivery at an internal service."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from accountdesk.core.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL is not one a webhook may reach."""


class Unresolved(TargetRefused):
    """The host has no address now (which may pass)."""


@dataclass(frozen=True)
class Target:
    scheme: str  # http or https
    address: str  # the checked address, which the connection is made to
    port: int
    path: str  # the request target: path and query
    host: str  # the name the receiver expects as the TLS server name
    host_header: str


def _networks(settings: Settings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(part.strip(), strict=False)
            for part in settings.webhook_allowed_networks.split(",") if part.strip()]


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


def allowed(address: Address, settings: Settings) -> bool:
    if settings.webhook_allow_private_targets or is_public(address):
        return True
    return any(address in network for network in _networks(settings))


def check_url(url: str, settings: Settings) -> None:
    """What can be checked without resolving (when an endpoint is saved): http(s), a host, no user name or password,
    and a literal address must be allowed."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError on a bad port
    except ValueError as exc:
        raise TargetRefused("This is not a valid URL.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("Enter an http:// or https:// URL with a host name.")
    if parts.username or parts.password:
        raise TargetRefused("Leave user names and passwords out of the URL; the signature authenticates deliveries.")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        if parts.hostname.rstrip(".").lower() in ("localhost", "localhost.localdomain") and not (
                settings.webhook_allow_private_targets):
            raise TargetRefused("Webhooks may not be sent to this server itself.") from None
        return
    if not allowed(literal, settings):
        raise TargetRefused("Webhooks may only be sent to public addresses.")


def resolve(url: str, settings: Settings) -> Target:
    """The URL pinned to a checked address; TargetRefused when the host has any address that is not allowed."""
    check_url(url, settings)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Unresolved(f"The host {host} cannot be resolved: {exc}") from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    refused = [str(a) for a in addresses if not allowed(a, settings)]
    if not addresses or refused:
        raise TargetRefused(f"{host} resolves to an address webhooks may not reach ({', '.join(refused)}).")
    path = parts.path or "/"
    return Target(parts.scheme, str(addresses[0]), port, f"{path}?{parts.query}" if parts.query else path, host,
                  parts.netloc)


def pool_for(target: Target, timeout: urllib3.Timeout, **options: object) -> urllib3.HTTPConnectionPool:
    """Connections to the checked address; for https the TLS server name and certificate check use the URL's host."""
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(target.address, port=target.port, timeout=timeout, retries=False,
                                           server_hostname=target.host, assert_hostname=target.host, **options)
    return urllib3.HTTPConnectionPool(target.address, port=target.port, timeout=timeout, retries=False, **options)


def post_once(url: str, body: bytes, headers: dict[str, str], settings: Settings, seconds: float) -> int:
    """POST to a checked, pinned address, never following a redirect, within `seconds` in all; the answer's status.
    TargetRefused when the URL may not be reached; urllib3's HTTPError when the connection fails."""
    target = resolve(url, settings)
    with pool_for(target, urllib3.Timeout(total=seconds), maxsize=1) as pool:
        answer = pool.urlopen("POST", target.path, body=body, headers={**headers, "host": target.host_header},
                              redirect=False, preload_content=False)
        try:
            answer.read(64 * 1024, decode_content=False)
        finally:
            answer.release_conn()
        return answer.status
