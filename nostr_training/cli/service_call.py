"""Run a service operation through the running daemon's control API, or without one in the data
dir's own context (then deliver what it queued now; what is not delivered stays queued for the
daemon)."""

from __future__ import annotations

from typing import Any

from .common import load_settings, load_signer, note, run

__all__ = ["call_service"]

#: Seconds a command without a daemon spends delivering what it queued.
DELIVERY_WAIT = 5.0


async def _offline(config: Any, signer: Any, area: str, operation: str, body: dict[str, Any], connect: bool) -> Any:
    from ..daemon.routes_training import AREAS
    from ..services.context import offline_context

    async with offline_context(config, signer, connect=connect) as ctx:
        result = await AREAS[area][operation](ctx, body)
        if connect:
            import asyncio

            loop = asyncio.get_running_loop()
            deadline = loop.time() + DELIVERY_WAIT
            while loop.time() < deadline and await ctx.outbox.deliver_due():
                pass
            depth = await ctx.store.outbox_depth()
            if depth:
                note(f"nostr-training: {depth} deliveries queued; the daemon sends them when it runs")
        return result


def call_service(
    area: str, operation: str, body: dict[str, Any], *, data_dir: str | None, key_file: str | None = None,
    signs: bool = False,
    reads_inbox: bool = False,
    fetches: bool = False,
) -> Any:
    """The operation's JSON answer; ``signs`` says the operation signs with the user's key,
    ``reads_inbox`` that it reads the user's gift wraps (the key is needed, and without a daemon
    a short-lived pool fetches them), ``fetches`` that without a daemon it asks the relays
    through a short-lived pool before it reads (no key needed)."""
    from ..nips.nip19 import npub_encode
    from .client import running_daemon

    config = load_settings(data_dir)
    client = running_daemon(config.data_dir)
    if client is not None:
        if signs:
            note("nostr-training: signing with the running daemon's key")
        return client.call("POST", f"/{area}/{operation}", body)
    signer = load_signer(key_file, config, required=signs or reads_inbox)
    if signs and signer is not None:
        pubkey = run(signer.get_public_key())
        note(f"nostr-training: signing with {npub_encode(pubkey)}")
    return run(_offline(config, signer, area, operation, body, connect=(signs or reads_inbox or fetches) and bool(config.relays)))
