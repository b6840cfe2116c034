"""The web view's gate: login from the per-start secret, cookie sessions, CSRF tokens, headers.

The page can make the daemon sign, so every website the user visits is an attacker. What keeps
them out, besides the server's exact Host/Origin guard (``daemon.http``):

- a login link carries a secret derived from the daemon's per-start control token (an HMAC of
  it, so the link in the browser's history never reveals the control API's bearer token); the
  login sets a random session cookie (HttpOnly, SameSite=Strict, Path=/) and redirects to a URL
  without the secret;
- each session has its own CSRF token, checked on every POST next to an exact same-origin
  ``Origin`` (a browser always sends it on POST; a request without one is refused here);
- responses carry a strict Content-Security-Policy (no inline script), ``frame-ancestors
  'none'`` and ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``, no CORS headers.

Cookies are not scoped by port, so the cookie's name carries it: two daemons on one machine
(an instructor's and a learner's data dir) keep separate sessions in one browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

__all__ = [
    "SECURITY_HEADERS",
    "SessionBook",
    "WebSession",
    "cookie_name",
    "login_secret",
]

#: No inline script or style, nothing from elsewhere but recordings (Blossom servers) and
#: loopback media; no framing; forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' https: http://127.0.0.1:* http://localhost:* blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

#: How many browser sessions one daemon keeps; the oldest goes first.
MAX_SESSIONS = 64


def login_secret(control_token: str) -> str:
    """The secret of the login link: derived from, but not revealing, the control token."""
    return hmac.new(control_token.encode(), b"nostr-training web login", hashlib.sha256).hexdigest()


def cookie_name(port: int) -> str:
    return f"nt_session_{port}"


@dataclass(frozen=True)
class WebSession:
    """One logged-in browser: its cookie value and its CSRF token."""

    session_id: str
    csrf: str
    created_at: int


class SessionBook:
    """Sessions of one daemon start (in memory: a restart logs every browser out)."""

    def __init__(self, control_token: str, *, limit: int = MAX_SESSIONS):
        self._secret = login_secret(control_token)
        self._sessions: OrderedDict[str, WebSession] = OrderedDict()
        self._limit = limit

    def secret_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self._secret.encode())

    def open(self, now: int) -> WebSession:
        session = WebSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now)
        self._sessions[session.session_id] = session
        while len(self._sessions) > self._limit:
            self._sessions.popitem(last=False)
        return session

    def find(self, cookie: str | None) -> WebSession | None:
        if not cookie:
            return None
        for session_id, session in self._sessions.items():
            if hmac.compare_digest(session_id.encode(), cookie.encode()):
                return session
        return None

    def csrf_ok(self, session: WebSession, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(session.csrf.encode(), given.encode())

    def __len__(self) -> int:
        return len(self._sessions)
