"""Soak: a daemon under clients that ask for a lot and then stop reading, for minutes.

Starts ``nostr-training daemon run`` as a child process on 127.0.0.1 (no upstream relays),
fills its index with events through the local endpoint, then opens waves of clients that each
send a REQ for everything and never read again (100 at a time by default). Every few seconds it
prints the daemon's RSS; the baseline is the RSS after the fill, measured in the same run. At the
end, with the last wave still hanging, it sends SIGTERM and prints how long the daemon took to
exit (target: within 2 s), and the RSS ratio peak/baseline (target: flat, about 1).

    python benchmarks/soak_abandoning_clients.py                   # 3 minutes, 100 clients a wave
    python benchmarks/soak_abandoning_clients.py --minutes 0.5 --clients 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect

from nostr_training.daemon.app import read_runtime
from nostr_training.daemon.config import load_config, write_config
from nostr_training.event import EventTemplate, sign_event
from nostr_training.keys import Keys


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def fill(url: str, events: int, size: int) -> None:
    keys = Keys.generate()
    async with connect(url, max_size=None) as ws:
        await ws.recv()
        for i in range(events):
            event = sign_event(EventTemplate(1, (), f"{i} " + "x" * size, 1_800_000_000 + i), keys.secret)
            await ws.send(json.dumps(["EVENT", event.to_dict()]))
            await ws.recv()


async def abandon(url: str, n: int) -> list:
    sockets = []
    for i in range(n):
        ws = await connect(url, max_size=None, max_queue=1)
        await ws.send(json.dumps(["REQ", f"all-{i}", {"kinds": [1]}]))
        sockets.append(ws)
    return sockets


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--size", type=int, default=4000, help="content bytes per event")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="nt-soak-"))
    os.environ["NOSTR_TRAINING_HOME"] = str(home)
    write_config(load_config(home).with_overrides(port=0))
    exe = str(Path(sys.executable).with_name("nostr-training"))
    log = open(home / "daemon.log", "wb")
    daemon = subprocess.Popen([exe, "daemon", "run"], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        while read_runtime(home) is None:
            if daemon.poll() is not None:
                raise SystemExit((home / "daemon.log").read_text())
            await asyncio.sleep(0.05)
        url = read_runtime(home).url  # type: ignore[union-attr]
        await fill(url, args.events, args.size)
        baseline = rss_mb(daemon.pid)
        print(f"index: {args.events} events of {args.size} B; baseline RSS after the fill: {baseline:.1f} MB")
        print(f"{'t (s)':>7} {'clients':>8} {'RSS (MB)':>9}")
        start = time.monotonic()
        waves: list[list] = []
        peak = baseline
        opened = 0
        while time.monotonic() - start < args.minutes * 60:
            for old in waves[:-1]:
                for ws in old:
                    ws.transport.abort()
            waves = waves[-1:]
            waves.append(await abandon(url, args.clients))
            opened += args.clients
            for _ in range(5):
                await asyncio.sleep(1)
                peak = max(peak, rss_mb(daemon.pid))
            print(f"{time.monotonic() - start:7.0f} {opened:8d} {rss_mb(daemon.pid):9.1f}", flush=True)
        stop_at = time.monotonic()
        os.kill(daemon.pid, signal.SIGTERM)
        code = await asyncio.to_thread(daemon.wait, 60)
        took = time.monotonic() - stop_at
        print(f"SIGTERM with {len(waves[-1])} clients hanging: exited {code} after {took:.2f} s (target <= 2 s)")
        print(f"RSS peak {peak:.1f} MB, baseline {baseline:.1f} MB, ratio {peak / baseline:.2f} ({opened} abandoning clients)")
    finally:
        if daemon.poll() is None:
            daemon.kill()
        log.close()


if __name__ == "__main__":
    asyncio.run(main())
