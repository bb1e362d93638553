"""The names this service answers to: a guard against DNS rebinding.

A web page under a name its owner controls can have that name resolve to 127.0.0.1 after the
page has loaded. The browser then takes the service on this machine for the page's own
origin: no cross-site check applies, and the page may read the library (model paths on disk
included) and change it. What gives such a request away is its `Host` header, which names the
page's site, not this service."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import hdrs, web

from modelshelf import errors
from modelshelf.web.endpoint import Handler

# Names that resolve to this machine on every system (RFC 6761 reserves .localhost for it).
LOOPBACK_NAMES = ("localhost",)


def name_of_host(header: str) -> str:
    """The name or address of a Host header's value, lower case, without port or final dot
    (`[::1]:8080` -> `::1`, `NAS.local.:80` -> `nas.local`)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name, colon, port = header.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        header = name
    return header.rstrip(".")


def is_address_or_local(name: str) -> bool:
    """Whether `name` is an IP address, a name of one label (`localhost`, a machine's own
    name) or a name under `.localhost`: names no web site can give its pages, since a site's
    name in public DNS has a dot."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return "." not in name or name.endswith(".localhost")
    return True


def is_loopback(bound: str) -> bool:
    """Whether the service listens on this machine's loopback interface only."""
    if name_of_host(bound) in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name_of_host(bound)).is_loopback
    except ValueError:
        return False


class HostGuard:
    """Refuses (403) any request whose Host header names this service by a name it was not
    given. On by default where rebinding is the risk: a service bound to loopback (a person's
    own machine) with no reverse proxy named in `trusted_proxies`. Then it answers to IP
    addresses, names of one label (`localhost`) and names under `.localhost` only, and to
    `allowed_hosts`. With `allowed_hosts` set it is on whatever the binding; `*` there turns
    it off."""

    # Host headers judged lately, and how: a client sends the same one on every request.
    KEPT = 64

    def __init__(self, allowed_hosts: Iterable[str], bound: str, behind_proxy: bool) -> None:
        self._allowed = frozenset(name_of_host(name) for name in allowed_hosts)
        self.on = "*" not in self._allowed and (
            bool(self._allowed) or (is_loopback(bound) and not behind_proxy)
        )
        self._judged: dict[str, bool] = {}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # The header as sent, not as a trusted proxy's X-Forwarded-Host rewrites it: a page
        # of the rebound name may send that header too.
        sent = request.headers.get(hdrs.HOST)
        if sent is not None and not self._answers_to(sent):
            raise errors.Forbidden(
                f"this service does not answer to the name {sent[:200]!r}: a web page under"
                " that name may be reaching it through DNS rebinding. Add the name to the"
                " setting allowed_hosts if it is this service's own."
            )
        return await handler(request)

    def _answers_to(self, sent: str) -> bool:
        judged = self._judged.get(sent)
        if judged is None:
            name = name_of_host(sent)
            judged = is_address_or_local(name) or name in self._allowed
            if len(self._judged) >= self.KEPT:
                self._judged.clear()
            self._judged[sent] = judged
        return judged
