"""Speed of the pure rules on a large class: attendance from raw evidence, and reminders due.

    python benchmarks/rules.py [--learners 300] [--repeat 5]

Attendance: a 3-hour session where every learner uses one to three devices, drops and rejoins,
and publishes a presence heartbeat every 30 s. The baseline is sorting the same evidence by
(pubkey, time), the least work any interval algorithm has to do; the ratio says how many sorts
``compute_attendance`` costs. Reminders: one ``reminders_due`` call on a lesson with that many
RSVPs (a daemon tick), against sorting the RSVPs by time. Every figure is the best of --repeat.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Callable

from nostr_training.kinds.calendar import Lesson, Rsvp, RsvpStatus
from nostr_training.rules.attendance import AttendancePolicy, Heartbeat, Join, Leave, SessionWindow, compute_attendance
from nostr_training.rules.reminders import reminders_due

START = 1_800_000_000
LENGTH = 3 * 3600
DAY = 86400


def class_evidence(learners: int, rng: random.Random) -> list:
    evidence: list = []
    for n in range(learners):
        who = f"{n:064x}"
        for device in range(rng.randint(1, 3)):
            at = START + rng.randint(-600, 1200)
            while at < START + LENGTH:
                stay = rng.randint(300, 4000)
                evidence.append(Join(who, at, f"dev{device}"))
                evidence.append(Leave(who, at + stay, f"dev{device}"))
                at += stay + rng.randint(10, 900)
        evidence.extend(Heartbeat(who, t) for t in range(START, START + LENGTH, 30))
    rng.shuffle(evidence)
    return evidence


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(1)

    evidence = class_evidence(args.learners, rng)
    window = SessionWindow(START, START + LENGTH)
    policy = AttendancePolicy()
    baseline = best_of(args.repeat, lambda: sorted(evidence, key=lambda e: (e.pubkey, e.at)))
    rule = best_of(args.repeat, lambda: compute_attendance(evidence, window, policy))
    print(f"attendance: {args.learners} learners, {len(evidence)} evidence items")
    print(f"  sort baseline       {baseline * 1e3:8.1f} ms")
    per_item = rule / len(evidence) * 1e6
    print(f"  compute_attendance  {rule * 1e3:8.1f} ms  ({per_item:.2f} us/item)")
    print(f"  ratio rule/sort     {rule / baseline:8.2f}")

    host = "f" * 64
    seats = args.learners // 2
    lesson = Lesson(host, "big", "Big class", START, START + LENGTH, host, max_participants=seats)
    statuses = list(RsvpStatus)
    rsvps = [
        Rsvp(f"{n:064x}", lesson.coordinate, rng.choice(statuses), "d", START - rng.randrange(DAY))
        for n in range(args.learners * 4)
    ]
    baseline = best_of(args.repeat, lambda: sorted(rsvps, key=lambda r: r.created_at))
    rule = best_of(args.repeat, lambda: reminders_due(lesson, rsvps, set(), START - 3600))
    print(f"reminders: {len(rsvps)} RSVPs, {lesson.max_participants} seats")
    print(f"  sort baseline       {baseline * 1e3:8.1f} ms")
    print(f"  reminders_due       {rule * 1e3:8.1f} ms")
    print(f"  ratio rule/sort     {rule / baseline:8.2f}")


if __name__ == "__main__":
    main()
