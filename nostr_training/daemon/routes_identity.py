"""Control API for identity: the user's profile (kind 0), read and set through the daemon's signer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import MalformedEvent
from ..services.identity import profile_dict, read_profile, set_profile
from .http import Route

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["routes"]


def routes(daemon: "Daemon") -> list[Route]:
    """``POST /profile/show`` {pubkey?} and ``POST /profile`` {fields, wait?}."""

    async def show(body: dict[str, Any]) -> Any:
        pubkey = body.get("pubkey") or daemon.me
        if not isinstance(pubkey, str) or not pubkey:
            raise MalformedEvent("no pubkey: the daemon has no signer; pass 'pubkey'", field="pubkey")
        profile = await read_profile(daemon.services, pubkey)
        return {"pubkey": pubkey, "profile": profile_dict(profile)}

    async def update(body: dict[str, Any]) -> Any:
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise MalformedEvent("'fields' must be an object of profile fields", field="fields")
        wait = body.get("wait", 10.0)
        if not isinstance(wait, (int, float)) or not 0 <= wait <= 300:
            raise MalformedEvent("'wait' must be 0..300 seconds", field="wait")
        return (await set_profile(daemon.services, fields, wait=float(wait))).to_dict()

    return [Route("POST", "/profile/show", show), Route("POST", "/profile", update)]
