"""Query latency of the SQLite index at scale: RSVPs of one lesson, lessons of one course.

    python benchmarks/ingest.py --events 1000000     # builds the database (kept for this)
    python benchmarks/query.py --events 1000000 [--queries 2000]

Opens the database ``benchmarks/ingest.py`` left for that N, picks random lessons and courses of
its stream, and times the store's typed queries the services use (``rsvps_of_lesson``,
``lessons_of_course``) and a NIP-01 REQ filter of the same RSVPs (what the local endpoint
serves). Prints p50, p99 and max in ms (target: p99 under 5 ms). The baseline, measured in the
same run on the same connection, is a primary-key lookup of one stored event (``get``): the
floor of any query's round trip through the store; the ratios say how far above it each is.
On a machine others are using, a query's wall-clock time includes waiting for a CPU: each query's
CPU time (this process's, all threads: the caller's and the reader connection's) is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import PEOPLE, WORKDIR, plan, pubkey_of, secret  # noqa: E402

from nostr_training.event import coordinate  # noqa: E402
from nostr_training.filters import Filter  # noqa: E402
from nostr_training.store import SqliteStore  # noqa: E402


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def timed(n: int, call: Callable[[int], Awaitable[Any]]) -> tuple[list[float], list[float], int]:
    """Wall-clock and CPU latencies in ms of n calls (after 50 warm-up calls) and the rows the
    calls returned."""
    for i in range(50):
        await call(i)
    samples, cpu, rows = [], [], 0
    for i in range(n):
        started, cpu_started = time.perf_counter(), time.process_time()
        got = await call(i)
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        rows += len(got) if isinstance(got, list) else 1
    return samples, cpu, rows


async def run(db: Path, n_events: int, seed: int, queries: int) -> None:
    sizes = plan(n_events)
    secrets_ = [secret(seed, i) for i in range(PEOPLE)]
    hosts = [pubkey_of(secrets_, i) for i in range(200)]
    rng = random.Random(7)

    def lesson(i: int) -> str:
        no = rng.randrange(sizes["lessons"])
        return coordinate(31923, hosts[(no // 10) % 200], f"lesson-{no}")

    def course(i: int) -> str:
        no = rng.randrange(max(1, sizes["lessons"] // 10))
        return coordinate(31924, hosts[no % 200], f"course-{no}")

    store = await SqliteStore.open(db)
    try:
        stats = await store.stats()
        ids = [e.id for e in await store.query([Filter(kinds=frozenset({31923}), limit=500)])]
        if not ids:
            raise SystemExit(f"{db} holds no lessons: run benchmarks/ingest.py --events {n_events} first")
        cases: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
            ("baseline: get(id)", lambda i: store.get(ids[i % len(ids)])),
            ("rsvps_of_lesson", lambda i: store.rsvps_of_lesson(lesson(i))),
            ("lessons_of_course", lambda i: store.lessons_of_course(course(i))),
            ("REQ {kinds:[31925], #a:[lesson]}", lambda i: store.query([Filter(kinds=frozenset({31925}), tags={"a": frozenset({lesson(i)})})])),
        ]
        print(f"database: {db} ({stats['events']:,} events); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'query':<34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'rows/q':>7}  p99 vs baseline"
              f"  {'CPU p50':>8} {'CPU p99':>8}")
        base_p99 = None
        for name, call in cases:
            samples, cpu, rows = await timed(queries, call)
            p50, p99 = statistics.median(samples), percentile(samples, 0.99)
            base_p99 = base_p99 or p99
            verdict = "" if name.startswith("baseline") else ("  ok (< 5 ms)" if p99 < 5 else "  over the 5 ms target")
            print(f"{name:<34} {p50:8.3f} {p99:8.3f} {max(samples):8.3f} {rows / queries:7.1f}  {p99 / base_p99:5.1f}x"
                  f"          {statistics.median(cpu):8.3f} {percentile(cpu, 0.99):8.3f}{verdict}")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="the N the database was built with")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--cpu", type=int, default=0, help="the CPU to pin to")
    args = parser.parse_args()
    db = args.db or WORKDIR / f"index-{args.events}.db"
    if not db.exists():
        raise SystemExit(f"no database at {db}: run benchmarks/ingest.py --events {args.events} first")
    os.sched_setaffinity(0, {args.cpu})
    asyncio.run(run(db, args.events, args.seed, args.queries))


if __name__ == "__main__":
    main()
