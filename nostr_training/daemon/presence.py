"""The learner's presence heartbeat: while the user is in a live session, their daemon says so.

NIP-53 clients re-publish room presence (10312) every 30-120 s while in a room; the host reads
fresh presence as "still here" (participant counts, the session's last activity, heartbeats in
the attendance evidence), and a beat older than about two intervals as gone. Every
``interval`` seconds of daemon time this component looks at each lesson the user asked to join
and, where ``rules.rooms.presence_due`` says so (live, joined and not left, let in, the last beat
``PRESENCE_INTERVAL`` old), announces presence through ``services.live.announce_presence``:
published for a public lesson, an ephemeral gift wrap (21059) to the hosts for a private one.
After a leave, or once the session has ended, nothing more is sent. Everything it needs is in
the index (the user's own join requests, claims and presences), so a restart resumes on its own.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import kinds
from ..errors import NostrTrainingError
from ..filters import Filter
from ..rules.rooms import presence_due
from ..services.live import announce_presence, load_evidence
from .components import PeriodicComponent

__all__ = ["PresenceHeartbeat", "FOLLOW_AFTER_END"]

log = logging.getLogger("nostr_training.presence")

FOLLOW_AFTER_END = 6 * 3600
"""A session running over its scheduled end still gets beats for this long; later lessons are skipped."""


class PresenceHeartbeat(PeriodicComponent):
    """Announces the user's presence in each live session they are in, on the daemon's clock."""

    name = "presence"

    def __init__(self, *, interval: float = 30.0) -> None:
        super().__init__()
        self.interval = interval
        self.sent = 0

    def status(self) -> dict[str, Any]:
        return {**super().status(), "sent": self.sent}

    async def tick(self, now: int) -> None:
        daemon = self.daemon
        if daemon is None or daemon.signer is None or daemon.me is None:
            return
        ctx, me = daemon.services, daemon.me
        asked = Filter(kinds=frozenset({kinds.JOIN_REQUEST}), authors=frozenset({me}))
        lessons = {e.tag_value("a") for e in await ctx.store.query([asked], now=now, include_private=True)}
        for coord in sorted(c for c in lessons if c):
            lesson = await ctx.store.lesson(coord, now=now)
            if lesson is None or now > lesson.end + FOLLOW_AFTER_END or now < lesson.start - 3600:
                continue
            if not presence_due(await load_evidence(ctx, lesson), me, now):
                continue
            try:
                await announce_presence(ctx, coord)
            except NostrTrainingError as exc:  # a relay refusing one beat: the next tick tries again
                log.warning("presence not sent", extra={"lesson": coord, "error": str(exc)})
                continue
            self.sent += 1
