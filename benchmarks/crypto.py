"""Crypto throughput on one core: event verification against raw libsecp256k1, NIP-44, gift wraps.

    python benchmarks/crypto.py [--events 3000] [--repeat 5]

The baseline is coincurve's BIP-340 verify on precomputed 32-byte ids and 64-byte signatures
with the key objects already built, i.e. libsecp256k1 with nothing around it. ``verify_event``
additionally serialises the event, hashes it, compares the id and decodes hex; the ratio says
how much of the raw speed survives (target >= 0.8). Every figure is the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Callable

from coincurve import PublicKeyXOnly

from nostr_training.event import Event, EventTemplate, sign_event, verify_event
from nostr_training.keys import Keys
from nostr_training.nips import nip44, nip59
from nostr_training.signer import LocalSigner

NOW = 1_800_000_000
CONTENTS = [
    "Jail support role-play: bring a notebook. Rôles assignés à l'arrivée — café offert ☕",
    "Accepted! Je serai là à 18h. 🙋🏽‍♀️ Ich komme etwas später.",
    "Digital security basics — 2-factor, passphrases, threat models. 数字安全基础",
    "",
]


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity here)"


def realistic_events(count: int) -> list[Event]:
    """Lessons and RSVPs with ~8 tags and unicode content, from a handful of authors."""
    authors = [Keys.generate() for _ in range(8)]
    host = authors[0].public_key
    events = []
    for i in range(count):
        author = authors[i % len(authors)]
        if i % 2:
            tags = (
                ("d", f"31923:{host}:lesson-{i}"),
                ("a", f"31923:{host}:lesson-{i}", "wss://relay.example.org"),
                ("e", f"{i:064x}"),
                ("p", host, "wss://relay.example.org"),
                ("status", "accepted"),
                ("fb", "busy"),
                ("alt", "RSVP to a training lesson"),
                ("client", "nostr-training"),
            )
            kind = 31925
        else:
            tags = (
                ("d", f"lesson-{i}"),
                ("title", f"Leçon {i}: sécurité numérique"),
                ("start", str(NOW + 3600 * i)),
                ("end", str(NOW + 3600 * i + 5400)),
                ("start_tzid", "Europe/Paris"),
                ("D", str((NOW + 3600 * i) // 86400)),
                ("p", host, "wss://relay.example.org", "host"),
                ("t", "training"),
            )
            kind = 31923
        events.append(sign_event(EventTemplate(kind, tags, CONTENTS[i % len(CONTENTS)], NOW + i), author.secret))
    return events


def best_rates(cases: list[tuple[str, int, Callable[[], object]]], repeat: int) -> list[float]:
    """Best-of-``repeat`` rates of several cases measured in turn within each round, so a
    frequency change or a busy neighbour hits a baseline and what is compared with it alike."""
    best = [float("inf")] * len(cases)
    for _ in range(repeat):
        for i, (_, _, run) in enumerate(cases):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    rates = []
    for (label, items, _), seconds in zip(cases, best, strict=True):
        rates.append(items / seconds)
        print(f"{label:<52} {items / seconds:>12,.0f} /s   ({seconds / items * 1e6:7.1f} us each)")
    return rates


def best_rate(label: str, items: int, run: Callable[[], object], repeat: int) -> float:
    return best_rates([(label, items, run)], repeat)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--wraps", type=int, default=300)
    args = parser.parse_args()

    print(f"crypto benchmark: {pin_to_one_core()}, {args.events} events, best of {args.repeat}")
    events = realistic_events(args.events)
    for ev in events:
        verify_event(ev)
    raw = [(PublicKeyXOnly(bytes.fromhex(ev.pubkey)), bytes.fromhex(ev.sig), bytes.fromhex(ev.id)) for ev in events]
    jsons = [ev.to_json() for ev in events]

    def raw_verify() -> None:
        for key, sig, msg in raw:
            if not key.verify(sig, msg):
                raise AssertionError("raw verify failed")

    def ours_verify() -> None:
        for ev in events:
            verify_event(ev)

    def parse_and_verify() -> None:
        for text in jsons:
            verify_event(Event.from_json(text))

    raw_rate, ours_rate, _ = best_rates([
        ("raw libsecp256k1 Schnorr verify (coincurve)", len(raw), raw_verify),
        ("verify_event on lessons/RSVPs (8 tags, unicode)", len(events), ours_verify),
        ("Event.from_json + verify_event", len(jsons), parse_and_verify),
    ], args.repeat)
    print(f"{'ratio verify_event / raw (target >= 0.8)':<52} {ours_rate / raw_rate:>12.2f}")

    alice, bob = Keys.generate(), Keys.generate()
    conversation_key = nip44.get_conversation_key(alice.secret, bob.public_key)
    message = CONTENTS[0] * 3
    payloads = [nip44.encrypt(message, conversation_key) for _ in range(args.events)]
    best_rate(
        f"NIP-44 encrypt ({len(message.encode())} B, cached conversation key)",
        args.events,
        lambda: [nip44.encrypt(message, conversation_key) for _ in range(args.events)],
        args.repeat,
    )
    best_rate(
        "NIP-44 decrypt (same)", args.events, lambda: [nip44.decrypt(p, conversation_key) for p in payloads], args.repeat
    )
    peers = [Keys.generate().public_key for _ in range(args.wraps)]
    best_rate(
        "NIP-44 conversation key (ECDH + HKDF-extract)",
        len(peers),
        lambda: [nip44.get_conversation_key(alice.secret, p) for p in peers],
        args.repeat,
    )

    rumor = EventTemplate(14, (("p", bob.public_key),), CONTENTS[1], NOW)
    best_rate(
        "gift wrap, one recipient each (raw key)",
        args.wraps,
        lambda: [nip59.gift_wrap_with_key(rumor, alice.secret, bob.public_key, now=NOW) for _ in range(args.wraps)],
        args.repeat,
    )
    learners = peers[:50]
    signer = LocalSigner(alice)
    asyncio.run(nip59.gift_wrap_many(rumor, signer, learners, now=NOW))
    best_rate(
        f"gift_wrap_many to {len(learners)} learners (warm key cache), per wrap",
        len(learners) * 4,
        lambda: [asyncio.run(nip59.gift_wrap_many(rumor, signer, learners, now=NOW)) for _ in range(4)],
        args.repeat,
    )
    wraps = [nip59.gift_wrap_with_key(rumor, alice.secret, bob.public_key, now=NOW) for _ in range(args.wraps)]
    best_rate(
        "unwrap (verify wrap + seal, 2 ECDH, 2 decrypts)",
        len(wraps),
        lambda: [nip59.unwrap_with_key(w, bob.secret) for w in wraps],
        args.repeat,
    )


if __name__ == "__main__":
    main()
