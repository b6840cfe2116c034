"""The daemon's local endpoint against its bounds and its Python peer, on the same events.

N kind-31925 RSVPs (distinct authors' answers to one lesson) are signed once, then, in one run:

- raw verify: coincurve Schnorr verification of every event (the bound for one core);
- store direct: ``SqliteStore.add_many`` in batches of 1,000 (no network);
- our endpoint: ``nostr-training daemon run`` as a child process (SQLite index in a temp dir,
  no upstream relays, so the events stay queued in the outbox), one websocket, ``--in-flight``
  EVENTs outstanding, timed until the last OK (every OK follows the commit holding its event);
- PyPI nostr-relay 1.14, the Python peer, started from the tests' venv under .test-tools/
  (made on first use), the same events over one websocket with the same number in flight.

Each path prints events/s and its ratio to raw verify; the endpoint also prints its ratio to
nostr-relay. Targets (issue 10): endpoint >= 30x nostr-relay and >= 0.25 of raw verify.

    python benchmarks/endpoint.py                    # 20,000 events, 200 in flight
    python benchmarks/endpoint.py --events 5000 --skip-peer
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from nostr_training import kinds  # noqa: E402
from nostr_training.daemon.app import read_runtime  # noqa: E402
from nostr_training.daemon.config import DaemonConfig, write_config  # noqa: E402
from nostr_training.event import EventTemplate, sign_event, verify_event  # noqa: E402
from nostr_training.keys import Keys  # noqa: E402
from nostr_training.store.sqlite import SqliteStore  # noqa: E402

from relay_servers import start_nostr_relay  # noqa: E402


def make_events(n: int) -> list:
    host = Keys.generate()
    lesson = f"{kinds.LESSON}:{host.public_key}:bench"
    authors = [Keys.generate() for _ in range(max(1, n // 20))]
    now = int(time.time())
    out = []
    for i in range(n):
        author = authors[i % len(authors)]
        tags = (("a", lesson), ("d", f"rsvp-{i:032x}"), ("status", "accepted"), ("p", host.public_key))
        out.append(sign_event(EventTemplate(kinds.RSVP, tags, "", now - n + i), author.secret))
    return out


def raw_verify(events: list) -> float:
    start = time.perf_counter()
    for event in events:
        verify_event(event)
    return len(events) / (time.perf_counter() - start)


async def store_direct(events: list, workdir: Path) -> float:
    store = await SqliteStore.open(workdir / "direct.sqlite")
    try:
        start = time.perf_counter()
        for i in range(0, len(events), 1000):
            await store.add_many(events[i:i + 1000], now=int(time.time()))
        return len(events) / (time.perf_counter() - start)
    finally:
        await store.close()


async def over_websocket(url: str, events: list, in_flight: int) -> float:
    frames = [json.dumps(["EVENT", e.to_dict()]) for e in events]
    async with connect(url, max_size=None) as ws:
        pending = 0
        answered = 0
        sent = 0
        start = time.perf_counter()

        async def read_one() -> None:
            nonlocal pending, answered
            while True:
                message = json.loads(await ws.recv())
                if message[0] == "OK":
                    if not message[2]:
                        raise SystemExit(f"refused: {message}")
                    pending -= 1
                    answered += 1
                    return

        while sent < len(frames):
            while pending < in_flight and sent < len(frames):
                await ws.send(frames[sent])
                sent += 1
                pending += 1
            await read_one()
        while answered < len(frames):
            await read_one()
        return len(events) / (time.perf_counter() - start)


async def our_endpoint(events: list, workdir: Path, in_flight: int) -> float:
    """``nostr-training daemon run`` as a child process, like the peer: each gets its own core."""
    home = workdir / "daemon"
    home.mkdir(parents=True)
    write_config(DaemonConfig(data_dir=home, config_path=home / "config.toml", port=0))
    env = {**os.environ, "NOSTR_TRAINING_HOME": str(home)}
    env.pop("NOSTR_TRAINING_KEY_FILE", None)
    exe = str(Path(sys.executable).with_name("nostr-training"))
    with open(home / "daemon.log", "wb") as log:
        child = subprocess.Popen([exe, "daemon", "run"], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        while (info := read_runtime(home)) is None:
            if child.poll() is not None:
                raise SystemExit((home / "daemon.log").read_text())
            await asyncio.sleep(0.05)
        return await over_websocket(info.url, events, in_flight)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(30)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--skip-peer", action="store_true", help="do not run nostr-relay")
    args = parser.parse_args()
    events = make_events(args.events)
    work = Path(tempfile.mkdtemp(prefix="nt-endpoint-"))
    rows = [("raw verify", raw_verify(events))]
    rows.append(("store add_many", await store_direct(events, work)))
    rows.append(("our endpoint", await our_endpoint(events, work, args.in_flight)))
    if not args.skip_peer:
        peer = start_nostr_relay(work / "nostr-relay")
        try:
            rows.append(("nostr-relay 1.14", await over_websocket(peer.url, events, args.in_flight)))
        finally:
            peer.stop()
    bound = rows[0][1]
    print(f"{args.events} kind-31925 events, {args.in_flight} in flight over one websocket")
    print(f"{'path':<18} {'events/s':>10} {'ratio':>7}")
    for name, rate in rows:
        print(f"{name:<18} {rate:10.0f} {rate / bound:7.3f}")
    ours = dict(rows)["our endpoint"]
    if "nostr-relay 1.14" in dict(rows):
        print(f"our endpoint / nostr-relay: {ours / dict(rows)['nostr-relay 1.14']:.1f}x (target >= 30x)")
    print(f"our endpoint / raw verify: {ours / bound:.3f} (target >= 0.25)")


if __name__ == "__main__":
    asyncio.run(main())
