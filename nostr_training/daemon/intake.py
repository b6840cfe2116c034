"""The local endpoint's EVENT messages parsed and verified on the second core.

Parsing a message, reading the event strictly and checking its id and signature cost more than
storing it; done on the event loop they kept the daemon on one core (measured: about 2,800
EVENTs/s). Here a worker process checks them a batch at a time: whatever arrived while it was
busy goes in the next batch, and the writer commits the previous batch meanwhile (a pipeline
over both cores). The worker is reached over a pipe the event loop watches, with no thread in
between: each hand-off through an executor's threads waits for the GIL, which under load cost
more than the check itself. The worker starts with the first batch of ``inline_below`` messages
or more (a daemon that only ever gets a few EVENTs never starts it); until it is ready, and for
good if it cannot start or dies (counted in the endpoint's ``checker_failures``), batches are
checked on the loop, one batch per turn of the loop.

A verdict is one of three: the event's fields (it verified), its id and why it is invalid, or
``None``: not a plain ``["EVENT", {...}]`` message, which the session answers itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any, Callable

from ..errors import InvalidEvent, MalformedEvent
from ..event import Event, verify_event

__all__ = ["EventIntake", "Verdict", "check_messages", "echoed_id", "event_of"]

log = logging.getLogger("nostr_training.intake")

#: (True, the event's fields) | (False, (its id or "", why it is invalid)) | None: not a plain EVENT.
Verdict = tuple[bool, Any] | None
OnVerdict = Callable[[Verdict], None]

_HEX = frozenset("0123456789abcdef")


def echoed_id(value: Any) -> str:
    """The id an OK may echo: only a real 64-hex id, else empty (NIP-01 allows it)."""
    return value if type(value) is str and len(value) == 64 and _HEX.issuperset(value) else ""


def check_messages(messages: list[str]) -> list[Verdict]:
    """Each message's verdict (in the worker process, or on the loop for small batches)."""
    out: list[Verdict] = []
    for message in messages:
        try:
            data = json.loads(message)
        except (ValueError, RecursionError):
            out.append(None)
            continue
        if type(data) is not list or len(data) != 2 or data[0] != "EVENT" or type(data[1]) is not dict:
            out.append(None)
            continue
        try:
            event = verify_event(Event.from_dict(data[1]))
        except (MalformedEvent, InvalidEvent) as exc:
            out.append((False, (echoed_id(data[1].get("id")), str(exc))))
            continue
        out.append((True, (event.id, event.pubkey, event.created_at, event.kind, event.tags, event.content, event.sig)))
    return out


def event_of(fields: tuple[Any, ...]) -> Event:
    """The event a verdict carries (its fields were read strictly and verified already)."""
    return Event(*fields)


def _serve(conn: Connection) -> None:
    """The worker: say it is ready, then answer each batch until the daemon closes the pipe (or
    dies)."""
    try:
        conn.send(_READY)
        while True:
            conn.send(check_messages(conn.recv()))
    except (EOFError, OSError, KeyboardInterrupt):
        pass


_READY = "ready"


class EventIntake:
    """Checks EVENT messages in batches; ``check`` calls back with each message's verdict, in
    the order the messages came.

    The worker starts with the first batch too large for the loop, and the batches before it
    says it is ready (its imports take a few hundred milliseconds) are checked on the loop:
    the first burst does not wait for it.
    """

    def __init__(
        self, *, max_batch: int = 1000, max_batch_chars: int = 4 * 1024 * 1024, inline_below: int = 8,
        on_failure: Callable[[], None] | None = None,
    ):
        self.max_batch = max_batch
        self.max_batch_chars = max_batch_chars
        self.inline_below = inline_below
        self.on_failure = on_failure
        self.batches = 0
        self.in_worker = 0
        self._pending: list[tuple[str, OnVerdict]] = []
        self._scheduled = False
        self._sent: list[tuple[str, OnVerdict]] | None = None  # the batch the worker is checking
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._ready = False
        self._broken = False

    @property
    def ready(self) -> bool:
        """Is the worker started and ready (batches go to it)?"""
        return self._ready

    def check(self, message: str, on_verdict: OnVerdict) -> None:
        self._pending.append((message, on_verdict))
        if not self._scheduled and self._sent is None:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._next)  # the frames of this moment join

    def _next(self) -> None:
        """Check the next batch: in the worker once it is ready, else on the loop (starting
        the worker when the batch is not small)."""
        self._scheduled = False
        if not self._pending or self._sent is not None:
            return
        batch = self._take()
        self.batches += 1
        if not self._ready and not self._broken and len(batch) >= self.inline_below:
            self._start()
        if not (self._ready and self._send(batch)):
            self._deliver(batch, check_messages([message for message, _ in batch]))
            if self._pending and not self._scheduled:  # the rest after the loop's other work
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._next)

    def _take(self) -> list[tuple[str, OnVerdict]]:
        """The next batch: up to ``max_batch`` messages and about ``max_batch_chars``."""
        size = count = 0
        for message, _ in self._pending:
            if count and (count == self.max_batch or size + len(message) > self.max_batch_chars):
                break
            size += len(message)
            count += 1
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch

    def _send(self, batch: list[tuple[str, OnVerdict]]) -> bool:
        assert self._conn is not None
        try:
            self._conn.send([message for message, _ in batch])
        except (OSError, EOFError, ValueError) as exc:
            self._fail(exc)
            return False
        self._sent = batch
        return True

    def _received(self) -> None:
        """The worker said something (a reader callback of the event loop)."""
        batch, self._sent = self._sent, None
        try:
            try:
                answer = self._conn.recv() if self._conn is not None else None
            except (OSError, EOFError) as exc:
                self._fail(exc)
                answer = None
            if answer == _READY:
                self._ready = True
            elif batch is not None:
                if answer is None:  # the worker died under this batch: check it here
                    answer = check_messages([message for message, _ in batch])
                else:
                    self.in_worker += len(batch)
                self._deliver(batch, answer)
        finally:
            self._next()

    @staticmethod
    def _deliver(batch: list[tuple[str, OnVerdict]], verdicts: list[Verdict]) -> None:
        for (_, on_verdict), verdict in zip(batch, verdicts, strict=True):
            try:
                on_verdict(verdict)
            except Exception:  # the callbacks catch their own errors; this keeps the others answered
                log.exception("an EVENT verdict callback failed")

    def _start(self) -> None:
        """Start the worker (spawned: the daemon runs threads); it exits when the pipe closes,
        also when the daemon is killed."""
        if self._conn is not None:
            return
        try:
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs,), name="nostr-training event check", daemon=True)
            process.start()
        except Exception as exc:  # e.g. no processes allowed here: check on the loop instead
            self._fail(exc)
            return
        theirs.close()
        self._conn, self._process = ours, process
        asyncio.get_running_loop().add_reader(ours.fileno(), self._received)

    def _fail(self, exc: BaseException) -> None:
        if not self._broken:
            log.warning("the EVENT checker process stopped (%s); checking on the event loop from now on", exc)
            if self.on_failure is not None:
                self.on_failure()
        self._broken = True
        self._ready = False
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                asyncio.get_running_loop().remove_reader(conn.fileno())
            except (RuntimeError, ValueError, OSError):
                pass
            conn.close()

    async def stop(self) -> None:
        """Drop what is not checked yet (those EVENTs get no OK) and stop the worker."""
        self._pending = []
        self._sent = None
        self._close()
        if self._process is not None:
            process, self._process = self._process, None
            await asyncio.get_running_loop().run_in_executor(None, process.join, 5)
            if process.is_alive():
                process.kill()
