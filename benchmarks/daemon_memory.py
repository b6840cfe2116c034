"""Daemon memory while streaming events: RSS must stay flat (target: under 150 MB).

Runs a real ``Daemon`` (SQLite index in a temp dir, local relay endpoint with one websocket
client subscribed to everything) and streams N signed events into its ingest path the way the
relay pool delivers them: one awaited ``on_event(relay, event)`` call per event on a followed
subscription. Events are made on the fly, so the generator holds none of them.

Prints RSS at every tenth of the run, the peak (``ru_maxrss``), and the ratio to the baseline RSS measured
after start-up in the same run.

    python benchmarks/daemon_memory.py              # 1,000,000 events
    python benchmarks/daemon_memory.py --events 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect

from nostr_training.daemon.app import Daemon
from nostr_training.daemon.config import DaemonConfig, load_config
from nostr_training.event import EventTemplate, sign_event
from nostr_training.keys import Keys

RELAY = "ws://127.0.0.1:9"
LIMIT_MB = 150.0


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def rss_parts() -> str:
    """Anonymous memory (heap, SQLite page cache) vs file pages (SQLite mmap of the index)."""
    return f"anon {_status_mb('RssAnon'):6.1f} MB, file {_status_mb('RssFile'):6.1f} MB"


class StreamingPool:
    """Stands in for the relay pool: keeps the daemon's subscription callbacks."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, tuple] = {}

    async def add_relay(self, url: str) -> None:
        return None

    async def remove_relay(self, url: str) -> None:
        return None

    async def subscribe(self, key, filters, relays, on_event, *, since=None, on_eose=None) -> None:
        self.subscriptions[key] = (on_event, on_eose)

    async def unsubscribe(self, key: str) -> None:
        self.subscriptions.pop(key, None)

    async def publish(self, event, relays, timeout=10):
        return {}

    async def fetch(self, filters, relays, timeout=10):
        return []

    def status(self):
        return []

    async def close(self) -> None:
        return None


async def reader(url: str, counter: list[int]) -> None:
    async with connect(url, max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps(["REQ", "all", {"kinds": [1]}]))
        async for _ in ws:
            counter[0] += 1


async def main(events: int, authors: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = load_config(tmp).with_overrides(relays=[RELAY], port=0)
        keys = [Keys.generate() for _ in range(authors)]
        config = DaemonConfig(**{**base.__dict__, "follow_authors": tuple(k.public_key for k in keys)})
        pool = StreamingPool()
        daemon = Daemon(config, pool=pool)
        await daemon.start()
        received = [0]
        client = asyncio.create_task(reader(daemon.url, received))
        await asyncio.sleep(0.2)
        on_event, on_eose = next(v for k, v in pool.subscriptions.items() if k.startswith("authors:"))
        await on_eose(RELAY)
        baseline = rss_mb()
        print(f"baseline RSS after start-up: {baseline:.1f} MB; streaming {events:,} events")
        peak = baseline
        step = max(1, events // 10)
        start = time.perf_counter()
        t0 = 1_700_000_000
        for i in range(events):
            key = keys[i % authors]
            ev = sign_event(EventTemplate(1, (("t", "bench"),), f"event {i} " + "x" * 120, t0 + i), key.secret)
            await on_event(RELAY, ev)
            if (i + 1) % step == 0:
                now = rss_mb()
                peak = max(peak, now)
                rate = (i + 1) / (time.perf_counter() - start)
                print(f"{i + 1:>10,} events  RSS {now:7.1f} MB ({rss_parts()})  {rate:,.0f} events/s, "
                      f"{received[0]:,} pushed to the local client")
        peak = max(peak, rss_mb())
        stats = await daemon.store.stats()
        peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        client.cancel()
        await asyncio.gather(client, return_exceptions=True)
        await daemon.stop()
        print(f"indexed {stats['events']:,} events, database {stats['db_bytes'] / 1e6:.0f} MB")
        print(f"max RSS {peak:.1f} MB (ru_maxrss, the true peak; limit {LIMIT_MB:.0f} MB); ratio to baseline {peak / baseline:.2f}")
        print("PASS" if peak < LIMIT_MB else "FAIL")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--authors", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.authors))
