"""The CLI's side of the control API: find the running daemon and call it over loopback HTTP.

Plain ``urllib`` (no event loop, nothing heavy to import): a command that talks to the daemon
stays quick to start. Errors come back as the error tree's classes with the daemon's message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DomainError, MalformedEvent, NostrTrainingError, NotFound

__all__ = ["DaemonClient", "DaemonSigner", "daemon_signer", "running_daemon", "DaemonGone"]


class DaemonGone(ConfigError):
    """The daemon stopped answering in the middle of a call."""


_STATUS_ERRORS: dict[int, type[NostrTrainingError]] = {400: MalformedEvent, 404: NotFound, 409: ConfigError, 422: DomainError}


class DaemonClient:
    """Calls ``/api/...`` on the daemon named by a runtime file."""

    def __init__(self, info: Any, *, timeout: float = 30.0):
        self.info = info
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        url = self.info.http_url + "/api" + path
        if method == "GET" and body:  # a GET carries its arguments in the query string
            url += "?" + urllib.parse.urlencode({k: v for k, v in body.items() if v is not None}, doseq=True)
            body = None
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            url, data=data, method=method,
            headers={"Authorization": f"Bearer {self.info.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, AttributeError):
                message = str(exc.reason)
            raise _STATUS_ERRORS.get(exc.code, ConfigError)(message) from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DaemonGone(f"the daemon (pid {self.info.pid}) stopped answering at {self.info.url}: {reason}") from None


class DaemonSigner:
    """Signs through the running daemon, which holds the user's key unlocked already: a command
    that only signs need not pay the NIP-49 scrypt unlock again. Only ``sign_event`` and
    ``get_public_key``; encryption stays with signers that hold the key."""

    def __init__(self, client: DaemonClient, pubkey: str):
        self.client = client
        self.pubkey = pubkey

    async def get_public_key(self) -> str:
        return self.pubkey

    async def sign_event(self, template: Any) -> Any:
        import asyncio

        from ..event import Event, verify_event

        body = {"template": {"kind": template.kind, "tags": [list(t) for t in template.tags],
                             "content": template.content, "created_at": template.created_at}}
        answer = await asyncio.to_thread(self.client.call, "POST", "/sign", body)
        event = verify_event(Event.from_dict(answer["event"]))
        if event.pubkey != self.pubkey:
            raise ConfigError("the daemon signed with another key than the one it reports")
        return event

    async def nip44_encrypt(self, peer_pubkey: str, plaintext: str) -> str:
        raise ConfigError("the daemon signs but does not encrypt for commands: use your key file or --signer")

    async def nip44_decrypt(self, peer_pubkey: str, payload: str) -> str:
        raise ConfigError("the daemon signs but does not decrypt for commands: use your key file or --signer")


def daemon_signer(data_dir: Path) -> DaemonSigner | None:
    """A signer over the running daemon's key, when a daemon runs with one."""
    client = running_daemon(data_dir)
    if client is None:
        return None
    pubkey = client.call("GET", "/status").get("pubkey")
    return DaemonSigner(client, pubkey) if pubkey else None


def running_daemon(data_dir: Path) -> DaemonClient | None:
    """A client for the daemon running on ``data_dir``, or None when none runs."""
    from ..daemon.app import read_runtime

    info = read_runtime(data_dir)
    return DaemonClient(info) if info is not None else None
