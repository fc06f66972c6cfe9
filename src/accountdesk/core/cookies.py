"""Cookie names. With secure cookies on (ACCOUNTDESK_COOKIE_SECURE, behind HTTPS) the browser enforces a prefix:
`__Host-` cookies are Secure, Path=/ and without Domain, so no sibling subdomain and no plain-HTTP page can set or
shadow them; a cookie scoped to one path can only be `__Secure-` (set over HTTPS only)."""

from __future__ import annotations


def host_cookie(name: str, secure: bool) -> str:
    """The name of a cookie set with Path=/ (sessions, CSRF seed, flash message)."""
    return f"__Host-{name}" if secure else name


def path_cookie(name: str, secure: bool) -> str:
    """The name of a cookie scoped to one path (a link token kept for one page)."""
    return f"__Secure-{name}" if secure else name
