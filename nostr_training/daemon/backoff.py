"""Reconnect delays as a pure generator, so the pool's retry policy is a value a test can replace.

Exponential growth with jitter (each delay drawn uniformly from [cap/2, cap] by default), which
keeps many clients that lost the same relay at the same moment from reconnecting in lockstep,
while never retrying in a tight loop. The
random source is an argument: a test passes a constant and gets a deterministic sequence.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

__all__ = ["backoff", "default_backoff"]


def backoff(
    *,
    initial: float = 0.5,
    factor: float = 2.0,
    maximum: float = 60.0,
    jitter: float = 0.5,
    rng: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Delays in seconds: ``initial * factor**n`` capped at ``maximum``, minus up to ``jitter`` of it.

    ``jitter`` is the fraction of each delay that is random: 0 gives the bare exponential
    sequence, 1 gives "full jitter" (a delay may then be close to zero).
    """
    if initial <= 0 or factor < 1 or maximum < initial or not 0 <= jitter <= 1:
        raise ValueError("backoff needs initial > 0, factor >= 1, maximum >= initial, 0 <= jitter <= 1")
    cap = initial
    while True:
        yield cap * (1 - jitter * rng())
        cap = min(cap * factor, maximum)


def default_backoff() -> Iterator[float]:
    """The pool's policy: 0.5 s doubling to a minute, each delay between half and all of its cap."""
    return backoff()
