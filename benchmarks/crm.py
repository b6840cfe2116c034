"""Speed of the CRM questions and of offline certificate verification at school scale.

    python benchmarks/crm.py [--contacts 10000] [--courses 5] [--bundles 10000] [--repeat 3]

Requirements: ``check_training_requirements`` for every contact against every course (target
under 1 s for 10,000 x 5), certificates in every state (valid, expiring, expired, revoked,
renewed, none). The baseline is one dict lookup per (contact, course) in a table built beforehand,
the least any answer can cost; the ratio says what the rules add. Building the ``TrainingBook``
index is timed apart.

Verification: ``cert verify FILE`` on that many exported bundles (award, definition, course and
sometimes a revocation, as JSON text): parse the file, then ``verify_certificate``. The baseline
is raw BIP-340 verification of the same events (``verify_event``, id and signature) with no
parsing; the ratio says what reading the file and checking the chain add to the signatures.
Every figure is the best of --repeat.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Callable

from nostr_training import kinds as k
from nostr_training.crm import Contact, TrainingBook, check_training_requirements
from nostr_training.event import coordinate, sign_event, verify_event
from nostr_training.keys import Keys
from nostr_training.rules.certification import DAY, Certificate
from nostr_training.rules.verification import VerdictStatus, verify_certificate

NOW = 1_800_000_000


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def school(contacts: int, courses: list[str], rng: random.Random) -> tuple[list[Contact], list[Certificate]]:
    people = [Contact(f"Learner {n}", pubkey=f"{rng.getrandbits(256):064x}", id=n + 1) for n in range(contacts)]
    certs = []
    for person in people:
        for course in courses:
            state = rng.choice(("valid", "expiring", "expired", "revoked", "renewed", "none"))
            if state == "none":
                continue
            issued = {"valid": -100, "expiring": -350, "expired": -400, "revoked": -50, "renewed": -800}[state]
            at = NOW + issued * DAY
            certs.append(
                Certificate(course, person.pubkey, at, at + 365 * DAY, NOW - DAY if state == "revoked" else None, f"C{len(certs)}")
            )
            if state == "renewed":
                certs.append(Certificate(course, person.pubkey, NOW - 10 * DAY, NOW + 355 * DAY, None, f"C{len(certs)}"))
    return people, certs


def bundles(count: int, rng: random.Random) -> list[str]:
    """``count`` exported files from one issuer and five courses; every tenth is revoked."""
    issuer = Keys.from_hex("7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a")
    learner_keys = [Keys.generate() for _ in range(64)]
    chains = []
    for n in range(5):
        course = k.Course(issuer.public_key, f"course-{n}", f"Course {n}", certification_enabled=True, validity_days=365)
        course_event = sign_event(k.build_course(course, created_at=NOW - 400 * DAY), issuer.secret)
        definition = k.CertificateDefinition(issuer.public_key, f"cert-{n}", f"Certificate {n}", course=course.coordinate)
        chains.append((course_event, sign_event(k.build_certificate_definition(definition, created_at=NOW - 400 * DAY), issuer.secret)))
    files = []
    for n in range(count):
        course_event, definition_event = chains[n % 5]
        learner = learner_keys[n % len(learner_keys)].public_key
        award = sign_event(
            k.build_certificate_award(
                coordinate(k.BADGE_DEFINITION, issuer.public_key, definition_event.d),
                learner,
                valid_from=NOW - rng.randint(1, 300) * DAY,
                valid_until=NOW + rng.randint(1, 300) * DAY,
                code=k.new_verification_code(),
                created_at=NOW - 300 * DAY,
            ),
            issuer.secret,
        )
        revocations = []
        if n % 10 == 0:
            parsed = k.parse_certificate_award(award)
            revocations.append(sign_event(k.build_certificate_revocation(parsed, created_at=NOW - DAY), issuer.secret))
        bundle = k.build_certificate_bundle(award, definition_event, course_event, revocations, exported_at=NOW)
        files.append(k.bundle_to_json(bundle))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--courses", type=int, default=5)
    parser.add_argument("--bundles", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(14)

    courses = [f"31924:{'a' * 64}:course-{n}" for n in range(args.courses)]
    people, certs = school(args.contacts, courses, rng)
    pairs = args.contacts * args.courses
    build = best_of(args.repeat, lambda: TrainingBook(certs))
    book = TrainingBook(certs)
    table = {(c.holder, c.course): c for c in certs}

    def baseline_lookups() -> int:
        return sum((person.pubkey, course) in table for person in people for course in courses)

    def answer_all() -> int:
        return sum(check_training_requirements(p.pubkey, courses, book, NOW).met for p in people)

    baseline = best_of(args.repeat, baseline_lookups)
    answers = best_of(args.repeat, answer_all)
    print(f"requirements: {args.contacts} contacts x {args.courses} courses, {len(certs)} certificates")
    print(f"  dict lookup baseline          {baseline * 1e3:8.1f} ms")
    print(f"  TrainingBook index build      {build * 1e3:8.1f} ms")
    print(f"  check_training_requirements   {answers * 1e3:8.1f} ms  ({answers / pairs * 1e6:.2f} us per contact x course)")
    print(f"  target < 1 s for all          {'met' if answers < 1 else 'MISSED'}")
    print(f"  ratio rules/lookup            {answers / baseline:8.1f}")

    files = bundles(args.bundles, rng)
    parsed = [k.parse_certificate_bundle(text) for text in files]
    events = [event for bundle in parsed for event in bundle.events]

    def raw_signatures() -> None:
        for event in events:
            verify_event(event)

    def verify_files() -> dict[VerdictStatus, int]:
        counts: dict[VerdictStatus, int] = {}
        for text in files:
            status = verify_certificate(k.parse_certificate_bundle(text), now=NOW).status
            counts[status] = counts.get(status, 0) + 1
        return counts

    raw = best_of(args.repeat, raw_signatures)
    verify = best_of(args.repeat, verify_files)
    counts = verify_files()
    print(f"verification: {args.bundles} bundle files, {len(events)} signed events")
    print(f"  raw signature baseline        {raw * 1e3:8.1f} ms  ({len(events) / raw:,.0f} events/s)")
    print(f"  parse + verify_certificate    {verify * 1e3:8.1f} ms  ({args.bundles / verify:,.0f} files/s)")
    print(f"  ratio verify/raw              {verify / raw:8.2f}")
    print("  answers                       " + ", ".join(f"{s.value} {n}" for s, n in sorted(counts.items(), key=lambda i: i[0].value)))


if __name__ == "__main__":
    main()
