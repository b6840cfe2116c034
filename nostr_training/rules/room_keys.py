"""Room key epochs: which epoch is current, who must receive which epoch's key, when to rekey.

The origin let every client rotate the key when it saw someone leave, so two leaves at once
forked the epochs, and its frame header held the epoch in one byte, wrapping after 255. Here
there is one committer: only the host's daemon keeps a ``KeySchedule`` and issues epochs. Epochs
are integers from 1, each rekey the previous plus one: never reused, never wrapped.

The schedule is a value the daemon advances with membership changes in the order it processed
them, one batch per tick, at the tick's time: late evidence never rewrites an epoch already
issued. ``catch_up`` applies whatever changes it has not seen yet, so the daemon can hand it every
change derived from its evidence (``rules.rooms.membership_changes``) on each tick; ``replay``
rebuilds the same schedule from the recorded ``batches`` after a restart. Key bytes are not made
here (rules draw no randomness): the daemon makes 32 random bytes for each new epoch number.

- The host holds every epoch (their own devices need the key); changes naming the host are
  ignored.
- ADMIT (the host's 8313 admit) makes a participant a member. A first-time member receives the
  current epoch's key: the session they were admitted to, no new epoch (unless
  ``rekey_on_join``). Someone who held an earlier epoch and comes back gets a new epoch for all,
  so they cannot read what was said while they were away.
- LEAVE (the participant's own signed leave) and REMOVE (the host's deny) of someone who holds
  the current key start a new epoch for those who remain. REMOVE also bars: a RETURN is then
  ignored until the host admits them again.
- RETURN: a participant who left comes back without a new decision (admitted participants do not
  queue again); ignored for someone never admitted or barred.
- A batch changes the epoch at most once; someone admitted and gone within one batch never held
  the key, so they cause no rekey.
- ``close`` retires the keys at the end of the session: no epoch is current any more.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Collection, Iterable

from ..errors import DomainError

__all__ = ["Change", "MembershipChange", "Epoch", "KeyDelivery", "KeySchedule"]


class Change(enum.Enum):
    ADMIT = "admit"
    RETURN = "return"
    LEAVE = "leave"
    REMOVE = "remove"


_ORDER = {c: i for i, c in enumerate(Change)}


@dataclass(frozen=True, slots=True)
class MembershipChange:
    pubkey: str
    change: Change
    at: int


@dataclass(frozen=True, slots=True)
class Epoch:
    """One key epoch; ``recipients`` is everyone who must receive its key (it grows on admits)."""

    number: int
    started_at: int
    recipients: frozenset[str]
    reason: str


@dataclass(frozen=True, slots=True)
class KeyDelivery:
    """One gift-wrapped 8310: epoch ``epoch``'s key to ``recipient``."""

    epoch: int
    recipient: str


@dataclass(frozen=True, slots=True)
class KeySchedule:
    host: str
    epochs: tuple[Epoch, ...]
    members: frozenset[str]
    """Who is in the session now and holds the current key (the host included)."""
    admitted: frozenset[str] = frozenset()
    """Admitted and not barred, whether in the session now or away after a leave."""
    batches: tuple[tuple[int, tuple[MembershipChange, ...]], ...] = ()
    """Every batch applied, with its time, in order: what ``replay`` needs."""
    closed_at: int | None = None
    rekey_on_join: bool = False
    seen: frozenset[MembershipChange] = field(default=frozenset(), repr=False)

    @classmethod
    def open(cls, host: str, at: int, *, rekey_on_join: bool = False) -> KeySchedule:
        """Epoch 1, held by the host alone, when the room is created."""
        first = Epoch(1, at, frozenset({host}), "room opened")
        return cls(host, (first,), frozenset({host}), rekey_on_join=rekey_on_join)

    @classmethod
    def replay(
        cls,
        host: str,
        opened_at: int,
        batches: Iterable[tuple[int, Iterable[MembershipChange]]],
        *,
        closed_at: int | None = None,
        rekey_on_join: bool = False,
    ) -> KeySchedule:
        """The schedule the daemon had, from its recorded batches (see ``batches``)."""
        schedule = cls.open(host, opened_at, rekey_on_join=rekey_on_join)
        for at, changes in batches:
            schedule = schedule.apply(changes, at)
        return schedule if closed_at is None else schedule.close(closed_at)

    @property
    def current(self) -> Epoch | None:
        """The epoch in use, or None once the session is closed."""
        return None if self.closed_at is not None else self.epochs[-1]

    @property
    def last_at(self) -> int:
        return self.batches[-1][0] if self.batches else self.epochs[0].started_at

    def epoch_at(self, at: int) -> Epoch | None:
        """The epoch current at ``at`` (None before the room opened or after the close)."""
        if self.closed_at is not None and at >= self.closed_at:
            return None
        found = None
        for epoch in self.epochs:
            if epoch.started_at > at:
                break
            found = epoch
        return found

    def recipients(self, epoch: int) -> frozenset[str]:
        for candidate in self.epochs:
            if candidate.number == epoch:
                return candidate.recipients
        raise DomainError(f"room key: no epoch {epoch} (the last is {self.epochs[-1].number})")

    def deliveries(self) -> tuple[KeyDelivery, ...]:
        """Every (epoch, recipient) the schedule has called for, oldest epoch first."""
        return tuple(KeyDelivery(e.number, pk) for e in self.epochs for pk in sorted(e.recipients))

    def due(self, delivered: Collection[KeyDelivery]) -> tuple[KeyDelivery, ...]:
        """The current epoch's keys not yet delivered; older epochs are never sent any more."""
        current = self.current
        if current is None:
            return ()
        return tuple(
            KeyDelivery(current.number, pk)
            for pk in sorted(current.recipients)
            if KeyDelivery(current.number, pk) not in delivered
        )

    def rekey_due(self, issued: int | None) -> bool:
        """Whether the current epoch is newer than the last one the daemon made a key for."""
        current = self.current
        return current is not None and (issued is None or current.number > issued)

    def holds_current_key(self, pubkey: str) -> bool:
        current = self.current
        return current is not None and pubkey in current.recipients and pubkey in self.members

    def close(self, at: int) -> KeySchedule:
        if self.closed_at is not None:
            return self
        return replace(self, closed_at=max(at, self.last_at))

    def catch_up(self, changes: Iterable[MembershipChange], at: int) -> KeySchedule:
        """Apply, as one batch at ``at``, the changes this schedule has not seen yet."""
        return self.apply((c for c in changes if c not in self.seen), at)

    def apply(self, changes: Iterable[MembershipChange], at: int) -> KeySchedule:
        """One batch at ``at`` (never before the previous batch): at most one new epoch."""
        batch = tuple(sorted(set(changes) - self.seen, key=lambda c: (c.at, _ORDER[c.change], c.pubkey)))
        if not batch or self.closed_at is not None:
            return self
        at = max(at, self.last_at)
        current = self.epochs[-1]
        members, admitted = set(self.members), set(self.admitted)
        for item in batch:
            pk = item.pubkey
            if pk == self.host:
                continue
            if item.change is Change.ADMIT:
                admitted.add(pk)
                members.add(pk)
            elif item.change is Change.RETURN:
                if pk in admitted:
                    members.add(pk)
            elif item.change is Change.LEAVE:
                members.discard(pk)
            else:
                admitted.discard(pk)
                members.discard(pk)
        held_before = frozenset().union(*(e.recipients for e in self.epochs[:-1]))
        lost = current.recipients - members
        newcomers = members - current.recipients
        returning = newcomers & held_before
        reason = ""
        if lost:
            reason = "left or removed: " + ", ".join(sorted(pk[:8] for pk in lost))
        elif returning:
            reason = "returned: " + ", ".join(sorted(pk[:8] for pk in returning))
        elif newcomers and self.rekey_on_join:
            reason = "joined: " + ", ".join(sorted(pk[:8] for pk in newcomers))
        if reason:
            epochs = (*self.epochs, Epoch(current.number + 1, at, frozenset(members), reason))
        else:
            epochs = (*self.epochs[:-1], replace(current, recipients=current.recipients | members))
        return replace(
            self,
            epochs=epochs,
            members=frozenset(members),
            admitted=frozenset(admitted),
            batches=(*self.batches, (at, batch)),
            seen=self.seen | frozenset(batch),
        )
