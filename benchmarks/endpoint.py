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
On a machine others are using, wall-clock rates say as much about the load as about the code:
each path also prints events per CPU-second of the side doing the work (for the relays: the
server's process with its children, e.g. the store's verifier; the client's CPU is printed
beside) and its ratio to raw verify's events per CPU-second.

    python benchmarks/endpoint.py                    # 20,000 events, 200 in flight
    python benchmarks/endpoint.py --events 5000 --skip-peer
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
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


def raw_verify(events: list) -> tuple[float, float]:
    """Events/s by the wall clock and per CPU-second."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for event in events:
        verify_event(event)
    return len(events) / (time.perf_counter() - start), len(events) / (time.process_time() - cpu_start)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_of(pid: int) -> float:
    """CPU seconds used so far by a process, its threads and its waited-for children, and by
    its live children (the store's verifier process)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def own(p: int) -> float:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            return 0.0
        return sum(int(v) for v in fields[11:15]) / ticks  # utime, stime, cutime, cstime

    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        children = []
    return own(pid) + sum(own(int(c)) for c in children)


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


async def measured(pid: int, run) -> tuple[float, float, float]:
    """(events/s, the server's CPU seconds, the client's CPU seconds) of one websocket run."""
    server, client = cpu_of(pid), time.process_time()
    rate = await run
    return rate, cpu_of(pid) - server, time.process_time() - client


async def our_endpoint(events: list, workdir: Path, in_flight: int) -> tuple[float, float, float]:
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
        await asyncio.sleep(1)  # let start-up work (and its CPU) finish before measuring
        return await measured(child.pid, over_websocket(info.url, events, in_flight))
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
    n = len(events)
    work = Path(tempfile.mkdtemp(prefix="nt-endpoint-"))
    # (path, events/s, events per CPU-second of the side doing the work, server CPU s, client CPU s)
    bound, bound_cpu = raw_verify(events)
    rows: list[tuple[str, float, float, float | None, float | None]] = [("raw verify", bound, bound_cpu, None, None)]
    started = time.process_time() + children_cpu()
    rate = await store_direct(events, work)  # closed at its end: its verifier process is waited for and counted
    used = time.process_time() + children_cpu() - started
    rows.append(("store add_many", rate, n / used, None, None))
    rate, server_cpu, client_cpu = await our_endpoint(events, work, args.in_flight)
    rows.append(("our endpoint", rate, n / server_cpu, server_cpu, client_cpu))
    if not args.skip_peer:
        peer = start_nostr_relay(work / "nostr-relay")
        try:
            assert peer.process is not None
            rate, server_cpu, client_cpu = await measured(peer.process.pid, over_websocket(peer.url, events, args.in_flight))
            rows.append(("nostr-relay 1.14", rate, n / server_cpu, server_cpu, client_cpu))
        finally:
            peer.stop()
    print(f"{n} kind-31925 events, {args.in_flight} in flight over one websocket;"
          f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'path':<18} {'events/s':>10} {'ratio':>7}   {'ev/CPU-s':>9} {'ratio':>7}   {'server CPU s':>12} {'client CPU s':>12}")
    for name, rate, per_cpu, server, client in rows:
        cpu = f"{server:12.2f} {client:12.2f}" if server is not None and client is not None else ""
        print(f"{name:<18} {rate:10.0f} {rate / bound:7.3f}   {per_cpu:9.0f} {per_cpu / bound_cpu:7.3f}   {cpu}")
    by_name = {name: (rate, per_cpu) for name, rate, per_cpu, *_ in rows}
    ours, ours_cpu = by_name["our endpoint"]
    if "nostr-relay 1.14" in by_name:
        peer_rate, peer_cpu = by_name["nostr-relay 1.14"]
        print(f"our endpoint / nostr-relay: {ours / peer_rate:.1f}x by the wall clock, {ours_cpu / peer_cpu:.1f}x per"
              " server CPU-second (target >= 30x)")
    print(f"our endpoint / raw verify: {ours / bound:.3f} by the wall clock, {ours_cpu / bound_cpu:.3f} per CPU-second"
          " (target >= 0.25)")


if __name__ == "__main__":
    asyncio.run(main())
