"""The store's verifier process: large batches verified on the second core, chunk by chunk.

The writer thread hands a batch's chunks to a feeder thread, which pickles them into a pipe; a
spawned worker verifies each chunk and answers over a second pipe that the writer thread reads
itself, while it stores the chunks already answered. An executor (a first version used
``ProcessPoolExecutor``) passes every chunk and answer through two more threads of this
process, each waiting for the GIL the writer holds, and keeps at most two chunks queued: its
worker idled about 4 ms between chunks of 1,000 events, 7 % of a 200k-event ingest.

Answers carry their job number: after a batch is abandoned (rolled back), the answers still
due for it are skipped, never taken for the next batch's.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import multiprocessing
import pickle
import queue
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from ..errors import MalformedEvent, StoreError
from ..event import Event, id_and_json, signature_holds

__all__ = ["VerifierGone", "VerifierProcess", "check_signatures", "verify_chunk"]

log = logging.getLogger("nostr_training.store")

#: Pipe capacity asked of the kernel: a whole chunk fits, so neither end waits on the other's
#: copy (Linux allows up to /proc/sys/fs/pipe-max-size, 1 MiB by default, without privileges).
_PIPE_BYTES = 1 << 20
_READY = "ready"
_Fields = tuple[str, str, int, int, Any, str, str | None]


class VerifierGone(StoreError):
    """The worker could not start or stopped; the caller verifies on its own thread."""


def verify_chunk(fields: Sequence[_Fields]) -> list[str | None]:
    """Each event's stored JSON when its id and signature are right, else None."""
    answers: list[str | None] = []
    for event_id, pubkey, created_at, kind, tags, content, sig in fields:
        event = Event(event_id, pubkey, created_at, kind, tags, content, sig)
        try:
            digest, raw = id_and_json(event)
        except MalformedEvent:
            answers.append(None)
            continue
        answers.append(raw if digest == event_id and signature_holds(event_id, pubkey, sig) else None)
    return answers


def check_signatures(triples: Sequence[tuple[str, str, str | None]]) -> list[str | None]:
    """"" for each (id, pubkey, sig) whose signature holds over the id as given, else None: the
    writer then checks that the id is the hash of the fields."""
    return ["" if signature_holds(event_id, pubkey, sig) else None for event_id, pubkey, sig in triples]


def _serve(jobs: Connection, answers: Connection) -> None:
    """The worker: say it is ready, then answer each job until the store closes the pipe. Ctrl-C
    in a terminal reaches the whole process group: the daemon stops and closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        answers.send(_READY)
        while True:
            job, whole, fields = pickle.loads(jobs.recv_bytes())
            verdicts = verify_chunk(fields) if whole else check_signatures(fields)
            answers.send_bytes(pickle.dumps((job, verdicts, time.monotonic()), pickle.HIGHEST_PROTOCOL))
    except (EOFError, OSError, KeyboardInterrupt):
        pass


def _widen(conn: Connection) -> None:
    """Ask for a pipe a whole chunk fits in; with the default 64 KiB the two ends take turns
    copying it, slower but still correct."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


class VerifierProcess:
    """One worker process, started on first use, used from the store's writer thread only.

    ``submit`` returns at once (the feeder thread does the pickling and waits on the pipe);
    ``answer`` blocks until that job's answer is in. Until ``ready`` the worker is still
    importing (a few hundred milliseconds), and the caller verifies inline meanwhile.
    """

    def __init__(self, *, answer_within: float = 30.0) -> None:
        self.answer_within = answer_within  # seconds; a chunk takes tens of milliseconds
        self.broken = False
        self.verified = 0  # events the worker has answered for
        self.finished_at = 0.0  # when the worker finished the last job answered (time.monotonic)
        self._ready = False
        self._process: multiprocessing.process.BaseProcess | None = None
        self._jobs: Connection | None = None
        self._answers: Connection | None = None
        self._queue: queue.SimpleQueue[tuple[int, bool, Sequence[Event]] | None] = queue.SimpleQueue()
        self._feeder: threading.Thread | None = None
        self._submitted = 0
        self._abandoned_below = 0  # jobs under this number are not sent any more

    def start(self) -> None:
        """Spawn the worker (a fork of a process running threads is unsafe); if it cannot
        start, ``broken`` is set and the store verifies on its writer thread."""
        if self._process is not None or self.broken:
            return
        try:
            context = multiprocessing.get_context("spawn")
            job_reader, job_writer = context.Pipe(duplex=False)
            answer_reader, answer_writer = context.Pipe(duplex=False)
            for conn in (job_writer, answer_writer):
                _widen(conn)
            process = context.Process(
                target=_serve, args=(job_reader, answer_writer), name="nostr-training store verifier", daemon=True
            )
            process.start()
        except Exception as exc:  # e.g. no processes allowed here
            self._fail(exc)
            return
        job_reader.close()
        answer_writer.close()
        self._process, self._jobs, self._answers = process, job_writer, answer_reader
        self._feeder = threading.Thread(target=self._feed, name="store-verify-feed", daemon=True)
        self._feeder.start()

    @property
    def ready(self) -> bool:
        """Has the worker said it is ready (without waiting)?"""
        if not self._ready and not self.broken and self._answers is not None:
            try:
                if self._answers.poll():
                    self._ready = self._answers.recv() == _READY
            except (OSError, EOFError) as exc:
                self._fail(exc)
        return self._ready

    @property
    def answered(self) -> bool:
        """Is an answer waiting to be read (without waiting)?"""
        try:
            return self._answers is not None and self._answers.poll()
        except (OSError, EOFError):
            return True  # answer() will say what happened

    def submit(self, chunk: Sequence[Event], whole: bool) -> int:
        """Queue a chunk: ``whole``, the worker checks ids and signatures and writes the stored
        JSON (answers: the JSON or None); else it checks the signatures only (answers: "" or
        None), and the writer checks the ids while it writes the JSON."""
        job = self._submitted
        self._submitted += 1
        self._queue.put((job, whole, chunk))
        return job

    def abandon(self) -> None:
        """Every job submitted so far is no longer wanted: unsent ones are dropped, answers
        still due are skipped when they come."""
        self._abandoned_below = self._submitted

    def answer(self, job: int) -> list[str | None]:
        """The answer to ``job`` (those of abandoned jobs before it are skipped); raises
        VerifierGone if the worker or the feeder stops first, or if the worker says nothing for
        ``answer_within`` seconds (stopped by a signal, say: it is killed)."""
        assert self._answers is not None
        try:
            while True:
                waiting_since = time.monotonic()
                while not self._answers.poll(min(0.5, self.answer_within)):
                    if self.broken or not self._alive():
                        raise EOFError("the verifier process or its feeder thread stopped")
                    if time.monotonic() - waiting_since > self.answer_within and self._process is not None:
                        self._process.kill()
                        raise TimeoutError(f"the worker did not answer in {self.answer_within:g} s and was killed")
                number, verdicts, finished_at = pickle.loads(self._answers.recv_bytes())
                if number == job:
                    self.verified += len(verdicts)
                    self.finished_at = finished_at
                    return verdicts
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            self._fail(exc)
            raise VerifierGone(f"the store's verifier process stopped ({exc!r})") from exc

    @property
    def stopped(self) -> bool:
        """Could it not start, or has its worker or feeder stopped (checked without waiting)?"""
        if not self.broken and self._process is not None and not self._alive():
            self._fail(EOFError(f"the worker exited with code {self._process.exitcode}"))
        return self.broken

    def _alive(self) -> bool:
        return (
            self._process is not None and self._process.is_alive()
            and self._feeder is not None and self._feeder.is_alive()
        )

    def _feed(self) -> None:
        """The feeder thread: pickle each job and write it, waiting while the pipe is full. It
        owns the job pipe and closes it when it ends, which tells the worker to exit."""
        jobs = self._jobs
        assert jobs is not None
        try:
            while (item := self._queue.get()) is not None:
                job, whole, chunk = item
                if job < self._abandoned_below or self.broken:
                    continue
                if whole:
                    fields: list[Any] = [(e.id, e.pubkey, e.created_at, e.kind, e.tags, e.content, e.sig) for e in chunk]
                else:
                    fields = [(e.id, e.pubkey, e.sig) for e in chunk]
                jobs.send_bytes(pickle.dumps((job, whole, fields), pickle.HIGHEST_PROTOCOL))
        except BaseException as exc:  # whatever it is, the writer must not wait for answers that never come
            self._fail(exc)
        finally:
            jobs.close()

    def _fail(self, exc: BaseException) -> None:
        """From now on the store verifies on its writer thread; said once, in the log."""
        if not self.broken:
            log.warning("the store's verifier process stopped (%r); verifying on the writer thread", exc)
        self.broken = True
        self._ready = False

    def close(self, timeout: float = 5.0) -> None:
        """Stop the feeder and the worker. The answer pipe is closed first: a worker blocked
        sending answers nobody will read (those of an abandoned batch) gets an error and exits,
        and so does the feeder blocked sending it jobs."""
        self.broken = True  # set quietly: what fails from here on is the closing
        if self._answers is not None:
            self._answers.close()
            self._answers = None
        if self._feeder is not None:
            self._queue.put(None)
            self._feeder.join(timeout)
            self._feeder = None
        elif self._jobs is not None:
            self._jobs.close()
        self._jobs = None
        if self._process is not None:
            process, self._process = self._process, None
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(timeout)
