"""The main job: a whole class on this machine in one command (``nostr-training demo``, ``./dev run``).

A real relay (rust-nostr's, from PyPI ``nostr-sdk``, the ``demo`` extra) runs on 127.0.0.1 as a
child process; three daemons (an instructor and two learners, fresh keys, temporary data dirs)
run in this process on one ``ManualClock`` that the demo moves, so a day of daemon time takes
seconds. Every step a user would type is a ``nostr-training`` command run in this process with
``--data-dir``; the demo only moves the clock, waits for relay delivery and reads the answers.

The story: a course and a 60-minute live lesson for one seat -> Ada takes the seat, Bo is
waitlisted -> Ada declines, Bo is promoted -> the instructor's daemon sends the reminders as
NIP-17 DMs -> the room opens, both ask to join; Bo is admitted by the RSVP policy, Ada from
the waiting room by the instructor; room keys reach them -> the session goes live; Ada drops
and reconnects, then leaves after 20 minutes; Bo stays 35 -> the session ends; attendance and
completion go to each learner privately, and each verifies their proof offline -> the
certificate goes to Bo (not to Ada) and is verified offline from an exported file in a fresh
data dir -> the recording is published (encrypted, to an in-process Blossom server) and
watched: Bo 90 %, Ada half -> the CRM says who meets the course's requirement -> a private
lesson: Ada is invited and answers -> a stranger reads the relay (``audit``): nothing private
shows. With ``--private`` the whole class is a private course the learners are invited to.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .clock import ManualClock, SystemClock

__all__ = ["DemoFailed", "DemoOptions", "DemoStopped", "DemoSummary", "LearnerSummary", "Progress", "run_demo", "main"]

PASSWORD = "demo password"
MINUTE, HOUR = 60, 3600
REMINDER_STEP = 600
#: How a reminder reads in the summary table (``--json`` keeps the wire names).
REMINDER_LABELS = {
    "scheduled": "scheduled", "24h": "24 h before", "1h": "1 h before", "starting": "starting",
    "recording_ready": "recording ready", "changed": "changed", "promoted": "seat opened", "cancelled": "cancelled",
}
#: Learners' names in the story, in the order they answer.
LEARNERS = ("ada", "bo")

Invoke = Callable[[list[str]], "tuple[int, str, str]"]


class DemoFailed(Exception):
    """A step did not give the answer it should have."""


class DemoStopped(DemoFailed):
    """A signal (SIGTERM, SIGHUP) stopped the run; the relay and daemons were stopped and the
    temporary files removed before this was raised."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}: the relay and daemons are stopped")


@dataclass(frozen=True)
class DemoOptions:
    keep: str | None = None
    relays: tuple[str, ...] = ()
    as_json: bool = False
    tty: bool = False
    private: bool = False
    """Run the whole class as a private course: invite-only, nothing about it in the clear."""


@dataclass
class LearnerSummary:
    name: str
    npub: str
    rsvp: str
    attended_minutes: float
    joins: int
    completed: bool
    certificate: str
    certificate_detail: str
    reminders: list[str]
    crm_requirement_met: bool
    recording_watched_percent: int
    recording_completed: bool
    proof_verified_offline: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "npub": self.npub, "rsvp": self.rsvp, "attended_minutes": self.attended_minutes,
            "joins": self.joins, "completed": self.completed, "certificate": self.certificate,
            "certificate_detail": self.certificate_detail,
            "reminders": self.reminders, "reminders_received": len(self.reminders),
            "crm_requirement_met": self.crm_requirement_met,
            "recording_watched_percent": self.recording_watched_percent,
            "recording_completed": self.recording_completed,
            "proof_verified_offline": self.proof_verified_offline,
        }


@dataclass
class DemoSummary:
    relays: list[str]
    lesson: str = ""
    course: str = ""
    learners: list[LearnerSummary] = field(default_factory=list)
    certificate_verified_offline: str = ""
    private: bool = False
    outsider: dict[str, Any] = field(default_factory=dict)
    """What a stranger's read of the relays found (``nostr-training audit --json``)."""
    kept: str | None = None
    seconds: float = 0.0
    daemon_seconds: int = 0
    """How far the demo moved the daemons' clock."""

    @property
    def ok(self) -> bool:
        return (bool(self.learners) and self.certificate_verified_offline == "valid"
                and all(s.proof_verified_offline == "valid" for s in self.learners)
                and bool(self.outsider) and not self.outsider.get("leaks"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "relays": self.relays, "course": self.course, "lesson": self.lesson, "private": self.private,
            "learners": [learner.to_dict() for learner in self.learners],
            "certificate_verified_offline": self.certificate_verified_offline,
            "outsider": self.outsider, "kept": self.kept, "seconds": round(self.seconds, 1),
            "daemon_seconds": self.daemon_seconds,
        }


class Progress:
    """One line per step: rewritten in place on a terminal, plain lines otherwise."""

    def __init__(self, out: Any, *, tty: bool, quiet: bool) -> None:
        self.out, self.tty, self.quiet, self.step = out, tty, quiet, 0
        self.started = time.monotonic()
        self._current = ""

    def begin(self, text: str) -> None:
        self.step += 1
        self._current = text
        self._rewrite("")

    def tick(self, text: str) -> None:
        """Show ``text`` (the demo clock's time) on a terminal's step line while the step runs,
        so a long step visibly moves; plain output has only the finished steps."""
        self._rewrite(text)

    def interrupted(self) -> None:
        """End a half-written terminal line, so what follows starts on its own line."""
        if self.tty and not self.quiet and self._current:
            self.out.write("\n")
            self.out.flush()

    def _rewrite(self, text: str) -> None:
        if self.tty and not self.quiet:
            width = shutil.get_terminal_size().columns - 1  # one screen line, so \r rewrites all of it
            line = f"  [{self.step:2}] {self._current} ..." + (f" {text}" if text else "")
            self.out.write("\r\033[K" + line[:width])
            self.out.flush()

    def done(self, detail: str = "") -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self.started
        line = f"[{self.step:2}] {self._current}" + (f": {detail}" if detail else "")
        if self.tty:
            self.out.write(f"\r\033[K\033[32m✓\033[0m {line}  \033[2m{elapsed:5.1f}s\033[0m\n")
        else:
            self.out.write(line + "\n")
        self.out.flush()
        self._current = ""

    def say(self, text: str) -> None:
        if not self.quiet:
            self.out.write(text + "\n")
            self.out.flush()


async def eventually(check: Callable[[], Any], what: str, *, timeout: float = 20.0) -> Any:
    """Poll a predicate (sync or async) until it is true: relay delivery takes real time."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class LocalRelay:
    """rust-nostr's relay as a child process on 127.0.0.1, stopped by its pid."""

    def __init__(self, log: Path) -> None:
        try:
            import nostr_sdk  # noqa: F401
        except ImportError:
            raise DemoFailed("no relay: pass --relay URL, or install the demo extra "
                             "(pip install 'nostr-training[demo]'; ./dev run does)") from None
        self.port = _free_port()
        self.log = open(log, "wb")
        self.child = subprocess.Popen(
            [sys.executable, "-m", "nostr_training.demo", "--serve-relay", str(self.port), "--parent", str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
        )
        self.url = f"ws://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        async def up() -> bool:
            if self.child.poll() is not None:
                raise DemoFailed(f"the local relay exited with {self.child.returncode}")
            return await asyncio.to_thread(_port_open, self.port)

        await eventually(up, "the local relay", timeout=30)

    def stop(self) -> None:
        if self.child.poll() is None:
            os.kill(self.child.pid, signal.SIGTERM)
            try:
                self.child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.child.pid, signal.SIGKILL)
                self.child.wait()
        self.log.close()


class Person:
    """One user: a data dir, a key, and (while the class runs) a daemon on the shared clock."""

    def __init__(self, name: str, home: Path, invoke: Invoke) -> None:
        from .keys import Keys, save_key_file

        self.name, self.home, self._invoke = name, home, invoke
        home.mkdir(parents=True, exist_ok=True)
        self.keys = Keys.generate()
        # A throwaway key: a light scrypt cost keeps the demo fast (a real key uses log_n 16).
        save_key_file(home / "key.ncryptsec", self.keys, PASSWORD, log_n=8)
        self.daemon: Any = None
        self.live: Any = None
        self.reminders: Any = None

    @property
    def pubkey(self) -> str:
        return str(self.keys.public_key)

    @property
    def npub(self) -> str:
        from .nips.nip19 import npub_encode

        return str(npub_encode(self.pubkey))

    async def start(self, relays: list[str], clock: ManualClock, courses: tuple[str, ...] = ()) -> None:
        from .daemon.app import Daemon
        from .daemon.certificates import TrainingRecords
        from .daemon.config import load_config, write_config
        from .daemon.live import LiveSessions
        from .daemon.private_inbox import PrivateInbox
        from .daemon.reminders import ReminderScheduler
        from .signer import LocalSigner

        config = replace(load_config(self.home).with_overrides(relays=relays, port=0), follow_courses=courses)
        write_config(config)  # what `daemon run --relay` would remember; commands read it too
        # The live component's ticks are driven by the demo (run_once), the reminders every 10
        # minutes of daemon time, the certificates component on its own interval; the private
        # inbox opens invitations, private answers and records as they arrive.
        self.live = LiveSessions(interval=24 * HOUR)
        self.reminders = ReminderScheduler(interval=REMINDER_STEP)
        self.daemon = Daemon(config, signer=LocalSigner(self.keys), clock=clock,
                             components=(self.reminders, TrainingRecords(), self.live, PrivateInbox()))
        await self.daemon.start()

    async def stop(self) -> None:
        if self.daemon is not None:
            await self.daemon.stop()
            self.daemon = None

    @property
    def ctx(self) -> Any:
        return self.daemon.services

    async def cli(self, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, str, str]:
        """``nostr-training ARGS --data-dir HOME`` as this user (through their running daemon)."""
        argv = [*args, "--data-dir", str(self.home)]
        code, out, err = await asyncio.to_thread(self._invoke, argv)
        if code not in ok:
            said = (err.strip() or out.strip())[-300:]
            raise DemoFailed(f"{self.name}: nostr-training {' '.join(args)} exited {code}: {said}")
        return code, out, err

    async def cli_json(self, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
        _, out, _ = await self.cli(*args, "--json", ok=ok)
        return json.loads(out)


class ClassRoom:
    """The three people, the relay and the clock: the steps below move them."""

    def __init__(self, work: Path, relays: list[str], invoke: Invoke, progress: Progress) -> None:
        self.work, self.relays, self.invoke, self.progress = work, relays, invoke, progress
        now = SystemClock().now()
        # The lesson ends an hour before the real now: every event, wrap expiry and certificate
        # date is one a relay (judging by its own clock) accepts.
        self.start = now - 2 * HOUR
        self.start -= self.start % REMINDER_STEP
        self.began = self.start - 26 * HOUR
        self.clock = ManualClock(self.began)
        self.host = Person("instructor", work / "instructor", invoke)
        self.learners = {name: Person(name, work / name, invoke) for name in LEARNERS}
        self.course = ""
        self.lesson = ""
        self.blossom_url = ""

    @property
    def people(self) -> list[Person]:
        return [self.host, *self.learners.values()]

    async def stop(self) -> None:
        for person in self.people:
            await person.stop()

    async def tick(self, person: Person) -> None:
        """Wait until ``person``'s reminder scheduler finished the tick due now and its outbox
        delivered (or was refused) everything."""
        scheduler, clock = person.reminders, self.clock
        await eventually(lambda: scheduler.waiting.is_set() and scheduler.next_due > clock.now(), "the reminder tick")
        await eventually(lambda: _outbox_settled(person), "the instructor's outbox")

    async def run_until(self, moment: int) -> None:
        """Move the shared clock to ``moment`` in reminder-sized steps; the instructor's daemon
        acts at each."""
        while self.clock.now() < moment:
            await self.advance(min(REMINDER_STEP, moment - self.clock.now()))
            await self.tick(self.host)

    async def jump(self, seconds: int) -> None:
        await self.advance(seconds)

    async def advance(self, seconds: int) -> None:
        """Move the shared clock, and show its time on the terminal's progress line."""
        await self.clock.advance(seconds)
        self.progress.tick(f"daemon time {_local(self.clock.now())} UTC")

    async def until(self, check: Callable[[], Any], what: str, *, step: int = 5) -> Any:
        """``eventually``, moving the clock a few seconds between looks: a daemon that must plan
        its subscriptions again (a new view key) does it at its next flush on that clock."""
        async def moved() -> Any:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if not value:
                await self.advance(step)
            return value

        return await eventually(moved, what)


async def _outbox_settled(person: Person) -> bool:
    entries = await person.daemon.store.outbox_entries()
    return all(e.state.value in ("delivered", "refused") for e in entries)


def _local(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M")


async def _state(person: Person, lesson: str, wanted: str) -> bool:
    await person.live.reconcile()
    code, out, _ = await person.cli("lesson", "show", lesson, "--json", ok=(0, 1))
    return code == 0 and json.loads(out)["state"] == wanted


async def _room_epochs(person: Person, lesson: Any) -> list[int]:
    from .services import live

    await person.live.reconcile()
    return [k.epoch for k in await live.room_keys(person.ctx, lesson)]


async def _claims(host: Person, lesson: str, pubkey: str, count: int) -> bool:
    from . import kinds
    from .filters import Filter

    await host.live.reconcile()
    found = await host.ctx.store.query([Filter(kinds=frozenset({kinds.ATTENDANCE_CLAIM}), authors=frozenset({pubkey}),
                                               tags={"a": frozenset({lesson})})], include_private=True)
    return len(found) >= count


async def _rsvp_rows(host: Person, lesson: str, want: dict[str, str]) -> Any:
    answer = await host.cli_json("rsvp", "list", lesson)
    rows = {r["pubkey"]: r for r in answer["rows"]}
    return answer if all(rows.get(k, {}).get("status") == v for k, v in want.items()) else None


async def reminders_received(person: Person, host: Person, lesson: str) -> list[str]:
    """The reminders this learner's DM client can open: gift wraps to them in their own index,
    unwrapped with their key, from the instructor, for this lesson; each counted once."""
    from . import kinds
    from .errors import NostrTrainingError
    from .filters import Filter
    from .kinds.reminders import parse_reminder
    from .nips.nip59 import unwrap
    from .signer import LocalSigner

    wraps = await person.ctx.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({person.pubkey})})],
                                         recipients=frozenset({person.pubkey}))
    seen: dict[str, tuple[int, str]] = {}
    for wrap in wraps:
        try:
            opened = await unwrap(wrap, LocalSigner(person.keys))
        except NostrTrainingError:
            continue
        rumor = opened.rumor
        if rumor.kind != kinds.DIRECT_MESSAGE or rumor.pubkey != host.pubkey:
            continue
        try:
            reminder = parse_reminder(rumor)
        except NostrTrainingError:
            continue
        if reminder.lesson == lesson:
            seen[rumor.id] = (rumor.created_at, reminder.kind.value)
    return [kind for _, kind in sorted(seen.values())]


async def run_class(room: ClassRoom, summary: DemoSummary, *, private: bool = False) -> None:
    """The story, step by step (see the module docstring); ``private``: the course is private,
    the learners are invited instead of following it."""
    from .services import live

    p, clock = room.progress, room.clock
    host, ada, bo = room.host, room.learners["ada"], room.learners["bo"]
    relays = room.relays
    relay_args = [a for url in relays for a in (url,)]

    p.begin("instructor: key, daemon, relay lists")
    await host.start(relays, clock)
    await host.cli("relays", "set", *relay_args, "--inbox", relays[0])
    await host.cli("profile", "set", "--name", "Instructor (demo)")
    p.done(f"{host.npub[:20]}... on {', '.join(relays)}")

    p.begin(f"instructor: {'a private' if private else 'a'} course and a 60-minute live lesson for one seat")
    course = (await host.cli_json("course", "create", "de-escalation", "De-escalation basics", "--certification",
                                   "--validity-days", "365", *(["--private"] if private else [])))["course"]["coordinate"]
    await room.jump(MINUTE)  # the course's revision that lists the lesson must be newer than the course
    scheduled = await host.cli_json("lesson", "schedule", course, "role-play", "Role play", "--start", _local(room.start),
                                    "--tz", "UTC", "--minutes", "60", "--max-participants", "1", "--recording")
    lesson_ref = scheduled["lesson"]["coordinate"]
    room.course, room.lesson = summary.course, summary.lesson = course, lesson_ref
    summary.course, summary.lesson = course, lesson_ref
    p.done(f"{lesson_ref[:24]}... starts {_local(room.start)} UTC (daemon time; the demo's clock starts 26 h before)")

    p.begin("learners: keys, daemons, relay lists, " + ("invited by the instructor" if private else "follow the course"))
    for learner in (ada, bo):
        await learner.start(relays, clock, courses=() if private else (course,))
        await learner.cli("relays", "set", *relay_args, "--inbox", relays[0])
    if private:
        await host.cli("course", "invite", course, ada.npub, bo.npub)
    for learner in (ada, bo):
        await room.until(lambda learner=learner: learner.ctx.store.lesson(lesson_ref), f"{learner.name} to see the lesson")
    p.done("both see the lesson in `lesson list`" + (" (their daemons opened the invitation)" if private else ""))

    p.begin("RSVPs: Ada takes the seat, Bo is waitlisted")
    await room.run_until(clock.now() + REMINDER_STEP)
    await ada.cli("rsvp", "answer", lesson_ref, "confirmed")
    await eventually(lambda: _rsvp_rows(host, lesson_ref, {ada.pubkey: "confirmed"}), "Ada's RSVP at the instructor")
    await room.run_until(clock.now() + REMINDER_STEP)
    await bo.cli("rsvp", "answer", lesson_ref, "confirmed")
    listing = await eventually(lambda: _rsvp_rows(host, lesson_ref, {ada.pubkey: "confirmed", bo.pubkey: "waitlisted"}),
                               "Bo on the waitlist")
    p.done(" / ".join(f"{_name(room, r['pubkey'])} {r['status']}" for r in listing["rows"]))

    p.begin("reminders: the 24 h reminder, then Ada declines and Bo is promoted")
    await room.run_until(room.start - 20 * HOUR)
    await ada.cli("rsvp", "answer", lesson_ref, "declined")
    listing = await eventually(lambda: _rsvp_rows(host, lesson_ref, {ada.pubkey: "declined", bo.pubkey: "confirmed"}),
                               "Bo's promotion")
    await room.run_until(room.start - 15 * MINUTE)
    sent = host.reminders.sent
    p.done(f"{sent} reminder DMs sent by the instructor's daemon (NIP-17 gift wraps)")

    p.begin("room: created 15 minutes before; both ask to join")
    await host.live.run_once()
    for learner in (ada, bo):
        await learner.live.run_once()
        await eventually(lambda learner=learner: _state(learner, lesson_ref, "room_created"), f"{learner.name} to see the room")
    await room.jump(5 * MINUTE)
    for learner in (ada, bo):
        await learner.cli("join", lesson_ref)
    await host.live.run_once()

    async def waiting() -> Any:
        await host.live.reconcile()
        await host.live.run_once()
        answer = await host.cli_json("room", "waiting", lesson_ref)
        return answer if any(w["pubkey"] == ada.pubkey for w in answer["waiting"]) else None

    asked = await eventually(waiting, "Ada in the waiting room")
    p.done(f"waiting: {', '.join(_name(room, w['pubkey']) for w in asked['waiting'])} "
           "(Bo, confirmed, is admitted by the lesson's RSVP policy)")

    p.begin("waiting room: the instructor admits Ada (she declined, then came anyway); room keys delivered")
    await room.jump(MINUTE)
    await host.cli("room", "admit", lesson_ref, ada.pubkey)
    await host.live.run_once()
    lesson = await live.resolve_lesson(host.ctx, lesson_ref)
    for learner in (ada, bo):
        await eventually(lambda learner=learner: _has_epoch(learner, lesson, 1), f"{learner.name}'s room key")
    p.done("each learner unwrapped room key epoch 1")

    p.begin("session live; Ada drops and reconnects at 10 minutes, leaves at 15; Bo leaves at 30")
    await room.run_until(room.start)
    await host.cli("session", "start", lesson_ref)
    for learner in (ada, bo):
        await eventually(lambda learner=learner: _state(learner, lesson_ref, "live"), f"{learner.name} to see it live")
        joined = await learner.cli_json("join", lesson_ref)
        if not joined.get("url"):
            raise DemoFailed(f"{learner.name} was admitted but got no link")
    await room.run_until(room.start + 10 * MINUTE)
    await ada.cli("join", lesson_ref, "--reconnect")
    await eventually(lambda: _claims(host, lesson_ref, ada.pubkey, 1), "Ada's reconnect at the instructor")
    await host.live.run_once()
    await room.run_until(room.start + 15 * MINUTE)
    await ada.cli("leave", lesson_ref)
    await eventually(lambda: _claims(host, lesson_ref, ada.pubkey, 2), "Ada's leave at the instructor")
    await host.live.run_once()
    await room.run_until(room.start + 30 * MINUTE)
    await bo.cli("leave", lesson_ref)
    await eventually(lambda: _claims(host, lesson_ref, bo.pubkey, 1), "Bo's leave at the instructor")
    await host.live.run_once()
    p.done("joins, the reconnect and the leaves reached the instructor's daemon")

    p.begin("session ends at 60 minutes: attendance and completion sent to each learner privately")
    await room.run_until(room.start + 60 * MINUTE)
    ended = await host.cli_json("session", "end", lesson_ref)
    rows = {r["pubkey"]: r for r in ended["attendance"]["rows"]}
    await eventually(lambda: _outbox_settled(host), "attendance records delivered")
    views = {}
    for learner in (ada, bo):
        views[learner.name] = await eventually(lambda learner=learner: _with_record(learner, lesson_ref),
                                               f"{learner.name}'s attendance record")
    p.done(", ".join(f"{_name(room, k)} {r['total_seconds'] // 60} min {'complete' if r['completed'] else 'not complete'}"
                     for k, r in rows.items()))

    p.begin("certificate: issued by the course's issuer to whoever completed")
    await room.run_until(clock.now() + REMINDER_STEP)
    certificates: dict[str, str] = {}
    codes: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for learner in (ada, bo):
        code, out, err = await host.cli("cert", "issue", course, learner.pubkey, "--json", ok=(0, 1))
        answer = json.loads(out) if out.strip() else {"reason": err.strip().splitlines()[-1].removeprefix("nostr-training: ")}
        if answer.get("code"):
            codes[learner.name] = answer["code"]
        listed = await host.cli_json("cert", "list", "--holder", learner.pubkey)
        held = listed.get("certificates", [])
        if held:
            codes[learner.name] = held[0]["code"]
            certificates[learner.name] = str(held[0]["status"])
            reasons[learner.name] = f"code {held[0]['code']}"
        else:
            certificates[learner.name] = "not issued"
            reasons[learner.name] = str(answer.get("reason", ""))
    p.done("; ".join(f"{k.capitalize()}: {v} ({_short_reason(reasons[k])})" for k, v in certificates.items()))

    p.begin("certificate verified offline from an exported file, in a fresh data dir")
    verdict = "none"
    if "bo" in codes:
        bundle = room.work / "certificate-bo.json"
        await host.cli("cert", "export", codes["bo"], "-o", str(bundle))
        stranger = room.work / "verifier"
        stranger.mkdir()
        code, out, _ = await asyncio.to_thread(room.invoke, ["cert", "verify", str(bundle), "--json", "--data-dir", str(stranger)])
        verdict = json.loads(out)["status"] if out.strip() else f"exit {code}"
    summary.certificate_verified_offline = verdict
    p.done(f"{verdict} (no network, no key)")

    p.begin("attendance proofs: each learner's host-signed record, verified offline in a fresh data dir")
    proofs: dict[str, str] = {}
    for learner in (ada, bo):
        _, proof, _ = await learner.cli("attendance", "proof", lesson_ref)
        path = room.work / f"attendance-{learner.name}.json"
        path.write_text(proof, encoding="utf-8")
        code, out, _ = await asyncio.to_thread(room.invoke, ["attendance", "verify", str(path), "--json"])
        checked = json.loads(out) if out.strip() else {}
        proofs[learner.name] = "valid" if code == 0 and checked.get("learner") == learner.pubkey else f"exit {code}"
    p.done(", ".join(f"{k.capitalize()}: {v}" for k, v in proofs.items()))

    p.begin("recording: the instructor publishes it (encrypted, on Blossom); Bo watches 90 %, Ada half")
    video = room.work / "session.webm"
    video.write_bytes(os.urandom(256 * 1024))  # stands in for the host's own recording of the session
    published = await host.cli_json("recording", "publish", lesson_ref, str(video), "--server", room.blossom_url)
    await room.run_until(clock.now() + REMINDER_STEP)  # the "recording available" reminder
    watched: dict[str, int] = {}
    watched_complete: dict[str, bool] = {}
    for learner, minutes in ((bo, 54), (ada, 30)):
        await eventually(lambda learner=learner: _recording_key(learner, lesson_ref), f"{learner.name} to hold the recording's key")
        await learner.cli("recording", "progress", lesson_ref, "0", str(minutes * MINUTE), "--json", ok=(0, 1))
        status = await learner.cli_json("recording", "status", lesson_ref, ok=(0, 1))
        watched[learner.name] = int(status["percent"])
        watched_complete[learner.name] = bool(status["completed"])
    p.done(f"{published['size']} bytes, {'encrypted, key sent to ' + str(len(published.get('keys_sent_to', []))) if published['encrypted'] else 'not encrypted'}; "
           + ", ".join(f"{k.capitalize()} watched {v} %" for k, v in watched.items()))

    p.begin("CRM: the instructor's contacts, linked to npubs, checked against the course")
    contacts = io.StringIO()
    writer = csv.writer(contacts)
    writer.writerow(["name", "email", "notes", "tags", "npub"])
    for learner in (ada, bo):
        writer.writerow([learner.name.capitalize(), f"{learner.name}@example.org", "", "demo", learner.npub])
    sheet = room.work / "contacts.csv"
    sheet.write_text(contacts.getvalue(), encoding="utf-8")
    await host.cli("crm", "import", str(sheet))
    met: dict[str, bool] = {}
    for learner in (ada, bo):
        code, _, _ = await host.cli("crm", "require", learner.name.capitalize(), course, ok=(0, 1))
        met[learner.name] = code == 0
    p.done(", ".join(f"{k.capitalize()}: {'met' if v else 'not met'}" for k, v in met.items()))

    p.begin("reminders each learner's DM client can open")
    for learner in (ada, bo):
        await eventually(lambda learner=learner: _wraps_delivered(host, learner), f"the instructor's DMs to reach {learner.name}")
    received = {learner.name: await reminders_received(learner, host, lesson_ref) for learner in (ada, bo)}
    p.done("; ".join(f"{k.capitalize()}: {', '.join(REMINDER_LABELS.get(r, r) for r in v) or 'none'}"
                     for k, v in received.items()))

    final = await host.cli_json("rsvp", "list", lesson_ref)
    statuses = {r["pubkey"]: r["status"] for r in final["rows"]}
    for learner in (ada, bo):
        row = rows.get(learner.pubkey, {})
        record = views[learner.name]["record"] or {}
        summary.learners.append(LearnerSummary(
            name=learner.name, npub=learner.npub, rsvp=statuses.get(learner.pubkey, "none"),
            attended_minutes=round(record.get("total_seconds", row.get("total_seconds", 0)) / 60, 1),
            joins=int(record.get("join_count", row.get("join_count", 0))),
            completed=bool(views[learner.name]["completed"]),
            certificate=certificates[learner.name], certificate_detail=reasons[learner.name],
            reminders=received[learner.name],
            crm_requirement_met=met[learner.name], recording_watched_percent=watched[learner.name],
            recording_completed=watched_complete[learner.name], proof_verified_offline=proofs[learner.name],
        ))
    await eventually(lambda: _outbox_settled(host), "the instructor's outbox to drain")
    if not private:
        p.begin("a private lesson: invite-only, Ada answers; nothing about it in the clear")
        jail = (await host.cli_json("course", "create", "jail-support", "Jail support", "--private",
                                     "--invite", ada.npub))["course"]["coordinate"]
        await room.jump(MINUTE)
        secret = (await host.cli_json("lesson", "schedule", jail, "intake", "Jail support: intake", "--start",
                                      _local(clock.now() + 2 * HOUR), "--tz", "UTC", "--minutes", "90"))["lesson"]["coordinate"]
        await room.until(lambda: ada.ctx.store.lesson(secret), "Ada's daemon to open the invitation")
        await ada.cli("rsvp", "answer", secret, "confirmed")
        # The clock moves while waiting: an answer whose relay look-up was not answered at once is
        # retried on the daemons' clock.
        await room.until(lambda: _rsvp_rows(host, secret, {ada.pubkey: "confirmed"}), "Ada's private answer at the instructor")
        for person in (host, ada):
            await eventually(lambda person=person: _outbox_settled(person), f"{person.name}'s outbox to drain")
        p.done("Ada was invited, saw it and answered; Bo knows nothing of it")
    p.begin("a stranger reads the relay: every kind, a fresh key")
    _, out, _ = await host.cli("audit", "--json", *[a for url in relays for a in ("--relay", url)], ok=(0, 1))
    summary.outsider = json.loads(out)
    leaks = summary.outsider["leaks"]
    p.done(f"{summary.outsider['events']} events, {len(leaks)} showing anything private "
           f"({summary.outsider['private_items']} private items and {summary.outsider['learners']} of their learners checked)")


async def _recording_key(person: Person, lesson: str) -> bool:
    """The learner's daemon holds the published recording and, for an encrypted one, its key."""
    from .services import live
    from .services.recordings import received_recording_key, recording_ready

    await person.live.reconcile()
    found = await live.resolve_lesson(person.ctx, lesson)
    recording = await recording_ready(person.ctx, found)
    if recording is None:
        return False
    return not recording.encryption_algorithm or await received_recording_key(person.ctx, found) is not None


async def _wraps_delivered(host: Person, learner: Person) -> bool:
    """Every gift wrap the instructor's daemon sent to ``learner`` is in the learner's index."""
    from . import kinds
    from .filters import Filter

    sent = await host.ctx.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({learner.pubkey})})],
                                      recipients=frozenset({learner.pubkey}))
    for wrap in sent:
        if await learner.ctx.store.get(wrap.id) is None:
            return False
    return bool(sent)  # each learner had a room key at least


async def _has_epoch(person: Person, lesson: Any, epoch: int) -> bool:
    return epoch in await _room_epochs(person, lesson)


async def _with_record(person: Person, lesson: str) -> Any:
    await person.live.reconcile()
    view = await person.cli_json("lesson", "status", lesson)
    return view if view["record"] and (view["completed"] or not view["record"]["met"]) else None


def _short_reason(reason: str) -> str:
    """The gist of a refusal for a progress line: its last clause, without the parenthesised
    detail (``course x: not complete (missing: ...)`` -> ``not complete``); the summary keeps it whole."""
    gist = re.sub(r"\s*\(.*\)\s*$", "", reason).rsplit(": ", 1)[-1].strip()
    return gist or reason[:40]


def _name(room: ClassRoom, pubkey: str) -> str:
    for person in room.people:
        if person.pubkey == pubkey:
            return person.name.capitalize() if person is not room.host else person.name
    return pubkey[:8]


def render_summary(summary: DemoSummary) -> str:
    header = ("learner", "rsvp", "attended", "joins", "completed", "certificate", "recording", "reminders received")
    rows = [
        (s.name.capitalize(), s.rsvp, f"{s.attended_minutes:g} of 60 min", str(s.joins), "yes" if s.completed else "no",
         s.certificate, f"{s.recording_watched_percent} % watched",
         f"{len(s.reminders)} ({', '.join(REMINDER_LABELS.get(r, r) for r in s.reminders) or '-'})")
        for s in summary.learners
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def row(cells: tuple[str, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines = ["", row(header), row(tuple("-" * w for w in widths))]
    lines += [row(r) for r in rows]
    lines.append("")
    lines.append(f"certificate verified offline from its file: {summary.certificate_verified_offline or 'not checked'}")
    lines.append("attendance proofs verified offline: "
                 + ", ".join(f"{s.name.capitalize()} {s.proof_verified_offline or 'not checked'}" for s in summary.learners))
    if summary.outsider:
        leaks = summary.outsider.get("leaks", [])
        lines.append(f"a stranger reading the relay: {summary.outsider.get('events', 0)} events, "
                     + (f"{len(leaks)} LEAKS: " + "; ".join(leak["why"] for leak in leaks[:3]) if leaks
                        else "nothing private shows"))
    lines.append(f"{summary.seconds:.1f} s wall time for {summary.daemon_seconds / HOUR:.1f} hours of daemon time")
    return "\n".join(lines)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


async def run_demo(options: DemoOptions, invoke: Invoke) -> DemoSummary:
    """Run the class; print progress and the summary; leave nothing running.

    SIGTERM or SIGHUP (``kill PID``, ``timeout``, a closed terminal) cancels the run, so the
    cleanup below still stops the relay and the daemons and removes the temporary files; then
    ``DemoStopped`` is raised. A second signal is not caught."""
    out = sys.stdout
    progress = Progress(out, tty=options.tty, quiet=options.as_json)
    started = time.monotonic()
    if options.keep:
        work = Path(options.keep).expanduser().resolve()
        if work.exists() and any(work.iterdir()):
            raise DemoFailed(f"--keep {work}: the directory is not empty")
        work.mkdir(parents=True, exist_ok=True, mode=0o700)
        work.chmod(0o700)  # contacts.csv holds emails; the proofs and keys are the learners'
    else:
        work = Path(tempfile.mkdtemp(prefix="nostr-training-demo-"))
    stopped_by: list[int] = []
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    watched = _stop_on_signals(loop, task, stopped_by)
    os.environ["NOSTR_TRAINING_PASSWORD"] = PASSWORD
    os.environ.pop("NOSTR_TRAINING_KEY_FILE", None)
    os.environ.pop("NOSTR_TRAINING_HOME", None)
    logging.getLogger("nostr_training").setLevel(logging.ERROR)
    relay: LocalRelay | None = None
    room: ClassRoom | None = None
    blossom: Any = None
    try:
        if options.relays:
            relays = list(options.relays)
            for url in relays:
                await _reachable(url)
            progress.say(f"Against {', '.join(relays)}: the class runs on the demo's clock, over the last 28 hours "
                         "(a relay's own clock cannot be accelerated, so every event is dated in the past; "
                         "a public relay may refuse or rate-limit that).")
        else:
            relay = LocalRelay(work / "relay.log")
            await relay.ready()
            relays = [relay.url]
        from .media.blossom_server import BlossomServer

        summary = DemoSummary(relays=relays, private=options.private)
        room = ClassRoom(work, relays, invoke, progress)
        blobs = work / "blossom"
        blobs.mkdir()
        blossom = BlossomServer(blobs, clock=room.clock)
        await blossom.start()
        room.blossom_url = blossom.url
        await run_class(room, summary, private=options.private)
    except asyncio.CancelledError:
        if not stopped_by:
            raise
        progress.interrupted()
        raise DemoStopped(stopped_by[0]) from None
    finally:
        for signum in watched:
            loop.remove_signal_handler(signum)
        if room is not None:
            await room.stop()
        if blossom is not None:
            await blossom.stop()
        if relay is not None:
            relay.stop()
        if options.keep:
            _owner_only(work)
        else:
            await _remove(work)
    summary.seconds = time.monotonic() - started
    summary.daemon_seconds = room.clock.now() - room.began
    if options.keep:
        summary.kept = str(work)
    if options.as_json:
        out.write(json.dumps(summary.to_dict()) + "\n")
    else:
        out.write(render_summary(summary) + "\n")
        if options.keep:
            out.write(_inspect_hint(work, room.lesson) + "\n")
    out.flush()
    return summary


def _stop_on_signals(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any] | None, stopped_by: list[int]) -> list[int]:
    """Cancel ``task`` on the first SIGTERM or SIGHUP (noting which in ``stopped_by``); the
    signals it could watch (none outside the main thread or without signal support)."""
    def stop(signum: int) -> None:
        if not stopped_by and task is not None:
            stopped_by.append(signum)
            task.cancel()

    watched = []
    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, stop, signum)
        except (ValueError, RuntimeError, NotImplementedError):
            continue
        watched.append(signum)
    return watched


def _owner_only(work: Path) -> None:
    """A kept class is its owner's alone: directories 0700, files 0600 (the CRM sheet has
    emails; the proofs, certificates and keys name the learners)."""
    for path in (work, *work.rglob("*")):
        if path.is_symlink():
            continue
        path.chmod(0o700 if path.is_dir() else 0o600)


async def _remove(work: Path) -> None:
    """Remove the run's directory; a store being opened when the run was stopped may create its
    file a moment after the first pass, so look again."""
    for _ in range(20):
        shutil.rmtree(work, ignore_errors=True)
        await asyncio.sleep(0.05)
        if not work.exists():
            return


async def _reachable(url: str) -> None:
    """Fail at once, in one line, when a relay given with --relay does not accept connections."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise DemoFailed(f"--relay {url}: not a ws:// or wss:// URL")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout=10)
    except (OSError, asyncio.TimeoutError) as exc:
        raise DemoFailed(f"the relay {url} does not accept connections ({exc.__class__.__name__})") from None
    writer.close()


def _cli_command() -> str:
    """How to run ``nostr-training`` from any shell: the console script beside this interpreter
    (``./dev run`` does not put .venv/bin on PATH), or the module when there is no script."""
    script = Path(sys.executable).with_name("nostr-training")
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m nostr_training.cli"


def _inspect_hint(work: Path, lesson: str) -> str:
    """Shell lines, each runnable as printed, to look at a kept class."""
    cli, lesson_arg = _cli_command(), shlex.quote(lesson)

    def at(*parts: str) -> str:
        return shlex.quote(str(work.joinpath(*parts)))

    return "\n".join([
        f"\nThe data dirs are kept in {work} (instructor/, ada/, bo/; the key password is '{PASSWORD}'):",
        f"  export NOSTR_TRAINING_PASSWORD='{PASSWORD}'",
        f"  {cli} lesson list --data-dir {at('instructor')}",
        f"  {cli} attendance show {lesson_arg} --data-dir {at('instructor')}",
        f"  {cli} lesson status {lesson_arg} --data-dir {at('bo')}",
        f"  {cli} cert verify {at('certificate-bo.json')}",
        f"  {cli} daemon run --data-dir {at('bo')} --port 0 2>{at('bo-daemon.log')} &   # Bo's daemon (its relay is gone: it retries)",
        f"  {cli} open --data-dir {at('bo')}   # Bo's web view of the class",
        "  kill %1   # stops Bo's daemon",
    ])


async def _serve_relay(port: int, parent: int) -> None:
    """rust-nostr's relay on 127.0.0.1:PORT, without its 60 EVENTs a minute per connection
    (the outbox retries a rate-limited event on the daemons' clock, which only the demo moves).
    It serves while the demo process ``parent`` lives: a demo killed outright (SIGKILL) leaves
    no relay behind, orphaned and still holding the port."""
    import nostr_sdk

    limit = nostr_sdk.RateLimit(max_reqs=500, notes_per_minute=100_000)
    relay = nostr_sdk.LocalRelayBuilder().addr("127.0.0.1").port(port).rate_limit(limit).build()
    await relay.run()
    while os.getppid() == parent:
        await asyncio.sleep(1)


def main(argv: list[str] | None = None) -> None:
    """``python -m nostr_training.demo [demo options]`` (what ``./dev run`` runs)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--serve-relay"]:
        parser = argparse.ArgumentParser(prog="nostr_training.demo")
        parser.add_argument("--serve-relay", type=int, required=True)
        parser.add_argument("--parent", type=int, default=os.getppid())
        parsed = parser.parse_args(args)
        try:
            asyncio.run(_serve_relay(parsed.serve_relay, parsed.parent))
        except KeyboardInterrupt:
            pass
        # The relay's own threads do not stop with the event loop: end the process here.
        sys.stdout.flush()
        os._exit(0)
    from .cli import main as cli_main

    cli_main(["demo", *args])


if __name__ == "__main__":
    main()
