"""Relay pool throughput against a real relay (rust-nostr LocalRelay, child process on 127.0.0.1).

    python benchmarks/relay_pool.py [--events 2000] [--repeat 3]

Fetch: ``RelayPool.fetch`` of N stored events (strict frame parsing, filter match, full
signature verification, de-duplication) against a baseline measured in the same run: a bare
websockets client that sends the same REQ and only ``json.loads`` each frame until EOSE. The
ratio says what the pool's checks cost on top of the wire. A second fetch of the same events
from two relays shows the verification cache (each event is verified once).
Publish: N events sent concurrently through ``RelayPool.publish`` until every OK is back.
Every figure is the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from nostr_training.daemon.relays import RelayPool  # noqa: E402
from nostr_training.event import EventTemplate, sign_event  # noqa: E402
from nostr_training.filters import Filter  # noqa: E402
from nostr_training.keys import Keys  # noqa: E402

from relay_servers import start_rust_relay  # noqa: E402


async def bare_fetch(url: str, filters: list[dict]) -> int:
    count = 0
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps(["REQ", "b", *filters]))
        async for frame in ws:
            message = json.loads(frame)
            if message[0] == "EOSE":
                return count
            count += 1
    return count


async def best(repeat: int, run) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = await run()
        times.append(time.perf_counter() - start)
    return min(times), result


async def main(events: int, repeat: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    relays = [start_rust_relay(workdir / name, notes_per_minute=10_000_000) for name in ("a", "b")]
    try:
        keys = Keys.generate()
        now = int(time.time())
        # The relay serves at most 500 stored events per filter: one tag per block of 500.
        blocks = (events + 499) // 500
        batch = [sign_event(EventTemplate(1, (("t", f"bench{i % blocks}"),), f"event {i} " + "x" * 200, now - i),
                            keys.secret) for i in range(events)]
        urls = [r.url for r in relays]
        async with RelayPool() as pool:
            start = time.perf_counter()
            results = await asyncio.gather(*(pool.publish(e, urls, 60) for e in batch))
            publish_s = time.perf_counter() - start
            refused = {r.message for res in results for r in res.values() if not r.ok}
            assert not refused, refused

        filters = [Filter(authors=frozenset({keys.public_key}), tags={"t": frozenset({f"bench{b}"})}, limit=500)
                   for b in range(blocks)]
        bare_s, bare_n = await best(repeat, lambda: bare_fetch(urls[0], [f.to_dict() for f in filters]))

        async def pool_fetch(targets: list[str]) -> int:
            async with RelayPool() as fresh:
                return len(await fresh.fetch(filters, targets, 120))

        pool_s, pool_n = await best(repeat, lambda: pool_fetch(urls[:1]))
        both_s, both_n = await best(repeat, lambda: pool_fetch(urls))
        assert bare_n == pool_n == both_n == events, (bare_n, pool_n, both_n)

        print(f"events: {events} (~{len(batch[0].to_json())} bytes each), best of {repeat}")
        print(f"publish to 2 relays, concurrent: {publish_s:.3f} s = {2 * events / publish_s:,.0f} OKs/s")
        print(f"baseline bare websockets + json.loads: {bare_s:.3f} s = {events / bare_s:,.0f} events/s")
        print(f"RelayPool.fetch, 1 relay:             {pool_s:.3f} s = {events / pool_s:,.0f} events/s")
        print(f"RelayPool.fetch, 2 relays, same events: {both_s:.3f} s = {2 * events / both_s:,.0f} frames/s")
        print(f"ratio pool/baseline (1 relay, events/s): {bare_s / pool_s:.2f}")
    finally:
        for relay in relays:
            relay.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.repeat))
