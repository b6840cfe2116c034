"""Run rust-nostr's LocalRelay (PyPI nostr-sdk) on 127.0.0.1 until killed.

Started by tests/relay_servers.py as a direct child process:
    python tests/relay_runner_rust.py --port 40123 [--nip42 read|write|both] [--auth-dm]
        [--notes-per-minute N --max-reqs N]

Without the rate options the relay keeps rust-nostr's defaults (60 events a minute per
connection, then "rate-limited: slow down").
"""

from __future__ import annotations

import argparse
import asyncio

import nostr_sdk


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--nip42", choices=("read", "write", "both"))
    parser.add_argument("--auth-dm", action="store_true", help="serve gift wraps only to their authenticated p")
    parser.add_argument("--notes-per-minute", type=int)
    parser.add_argument("--max-reqs", type=int, default=500)
    args = parser.parse_args()
    builder = nostr_sdk.LocalRelayBuilder().addr("127.0.0.1").port(args.port)
    if args.nip42:
        mode = getattr(nostr_sdk.LocalRelayBuilderNip42Mode, args.nip42.upper())
        builder = builder.nip42(nostr_sdk.LocalRelayBuilderNip42(mode=mode))
    if args.auth_dm:
        builder = builder.auth_dm(True)
    if args.notes_per_minute:
        builder = builder.rate_limit(nostr_sdk.RateLimit(max_reqs=args.max_reqs, notes_per_minute=args.notes_per_minute))
    relay = builder.build()
    await relay.run()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
