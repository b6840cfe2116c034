"""The private inbox: the daemon opens what is addressed to its user as it arrives.

Chained on the follows' ``on_indexed`` hook (as the web view is), it takes each gift wrap
addressed to the user (1059, and ephemeral 21059, which is never stored and is seen only here)
and each private calendar item (32678), and opens it in a task (``services.private.open_wrap`` /
``open_envelopes``): an invitation's view key is kept and the host's items open with it, a
private lesson and its revisions are indexed privately, a private RSVP reaches the host's
roster, reminders and waitlist like a public one. At start it runs ``open_inbox`` once, for
what was indexed while it was not running. A new view key makes the follows plan again, so
the new host's 32678 items are followed from then on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .. import kinds
from ..errors import NostrTrainingError
from ..event import Event
from ..services.private import InboxReport, open_envelopes, open_inbox, open_wrap

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["PrivateInbox"]

log = logging.getLogger("nostr_training.private_inbox")

_WRAPS = frozenset({kinds.GIFT_WRAP, kinds.GIFT_WRAP_EPHEMERAL})


class PrivateInbox:
    """Opens the user's gift wraps and private calendar items as the daemon indexes them."""

    name = "private-inbox"

    def __init__(self) -> None:
        self.daemon: Daemon | None = None
        self.opened = 0
        self.invitations = 0
        self.items = 0
        self.rumors = 0
        self.records = 0
        self.errors = 0
        self._lock = asyncio.Lock()  # one opening at a time: each is checked against the action log
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, daemon: "Daemon") -> None:
        self.daemon = daemon
        follows = daemon.follows
        if daemon.me is None or daemon.services is None or daemon.signer is None:
            return
        if follows is not None:
            previous = follows.on_indexed

            def on_indexed(event: Event) -> None:
                if previous is not None:
                    previous(event)
                self.offer(event)

            follows.on_indexed = on_indexed
        self._spawn(self._open_all())

    def offer(self, event: Event) -> None:
        """A newly indexed (or ephemeral) event: opened in a task when it may be for the user."""
        daemon = self.daemon
        if daemon is None or daemon.me is None:
            return
        if (event.kind in _WRAPS and daemon.me in event.tag_values("p")) or (
            event.kind == kinds.PRIVATE_CALENDAR_ITEM and event.pubkey != daemon.me
        ):
            self._spawn(self._open(event))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work, name="private-inbox")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_all(self) -> None:
        assert self.daemon is not None and self.daemon.services is not None
        async with self._lock:
            try:
                report = await open_inbox(self.daemon.services)
            except NostrTrainingError as exc:
                self.errors += 1
                log.error("private inbox: %s", exc)
                return
        self._count(report)
        if (report.invitations or report.records) and self.daemon.follows is not None:
            self.daemon.follows.request_replan()  # a delivered award's revocation marker is followed

    async def _open(self, event: Event) -> None:
        assert self.daemon is not None and self.daemon.services is not None
        ctx = self.daemon.services
        async with self._lock:
            try:
                if event.kind in _WRAPS:
                    report = await open_wrap(ctx, event, InboxReport())
                else:
                    report = await open_envelopes(ctx, envelopes=[event])
            except NostrTrainingError as exc:
                self.errors += 1
                log.error("private inbox: %s", exc, extra={"event": event.id[:16]})
                return
        self._count(report)
        if (report.invitations or report.records) and self.daemon.follows is not None:
            # follow the new host's private items, and a delivered award's revocation marker
            self.daemon.follows.request_replan()

    def _count(self, report: InboxReport) -> None:
        for why in report.refused:
            self.errors += 1
            log.warning("private inbox refused: %s", why)
        self.opened += report.opened
        self.invitations += report.invitations
        self.items += len(report.items)
        self.rumors += report.rumors
        self.records += report.records
        if report.invitations or report.items or report.rumors or report.records:
            log.info("private inbox opened", extra={"invitations": report.invitations, "items": len(report.items),
                                                    "rumors": report.rumors, "records": report.records})

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks.clear()

    def status(self) -> dict[str, Any]:
        return {"opened": self.opened, "invitations": self.invitations, "items": self.items, "rumors": self.rumors,
                "records": self.records, "errors": self.errors, "working": len(self._tasks)}
