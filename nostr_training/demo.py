"""The main job, end to end on this machine: an instructor and a learner, each with a daemon.

``./dev run`` (or ``python -m nostr_training.demo``) does what two users would do with the
CLI, against a real relay: rust-nostr's relay from PyPI ``nostr-sdk`` started on 127.0.0.1 as
a child process, or the relays given with ``--relay``.

1. each user makes a key (``keys generate``) and starts a daemon (``daemon run``);
2. the instructor signs and publishes relay lists, a course and a live-session lesson;
3. the learner's daemon follows the course and indexes the lesson; the learner RSVPs;
4. the instructor's daemon indexes the RSVP; the roster rule counts it;
5. the instructor gift-wraps the room key to the learner, whose daemon indexes the wrap and
   serves it (after NIP-42 AUTH) on its local endpoint; the learner unwraps it;
6. ``daemon status`` of both, then everything stops by pid.

Keys, signing, publishing, wrapping, unwrapping and status are the CLI commands a user types;
the templates come from ``nostr_training.kinds``; the script glues them and checks the answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import kinds
from .clock import SystemClock
from .errors import NostrTrainingError
from .event import Event
from .filters import Filter
from .keys import load_key_file
from .nips.nip17 import inbox_relays_template
from .nips.nip65 import RelayList, relay_list_template
from .rules.rsvp import roster
from .signer import LocalSigner

_CLOCK = SystemClock()

PASSWORD = "demo password"
EXE = [sys.executable, "-m", "nostr_training.cli"]


class DemoFailed(Exception):
    """A step did not give the answer it should have."""


def _say(text: str) -> None:
    print(text, flush=True)


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, NOSTR_TRAINING_HOME=str(home), NOSTR_TRAINING_PASSWORD=PASSWORD)
    env.pop("NOSTR_TRAINING_KEY_FILE", None)
    return env


def _cli(home: Path, *args: str, stdin: str = "", ok_codes: tuple[int, ...] = (0,)) -> str:
    """Run one ``nostr-training`` command as the user whose home is ``home``."""
    done = subprocess.run(EXE + list(args), input=stdin, capture_output=True, text=True, env=_env(home), timeout=120)
    if done.returncode not in ok_codes:
        raise DemoFailed(f"nostr-training {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise DemoFailed(f"timed out waiting for {what}")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def _serve_relay(port: int) -> None:
    import nostr_sdk

    relay = nostr_sdk.LocalRelayBuilder().addr("127.0.0.1").port(port).build()
    await relay.run()
    await asyncio.Event().wait()


class Processes:
    """Child processes started by the demo, stopped by pid (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
        out = open(log, "wb") if log else subprocess.DEVNULL
        child = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL)
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen[bytes]) -> int:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
        return child.returncode

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self.stop(child)


def _start_local_relay(procs: Processes, work: Path) -> str:
    try:
        import nostr_sdk  # noqa: F401
    except ImportError:
        raise DemoFailed("no relay: pass --relay URL, or install nostr-sdk (pip install 'nostr-training[demo]'; ./dev run does)") from None
    port = _free_port()
    procs.start([sys.executable, "-m", "nostr_training.demo", "--serve-relay", str(port)], log=work / "relay.log")
    _wait(lambda: _port_open(port), "the local relay")
    return f"ws://127.0.0.1:{port}"


def _start_daemon(procs: Processes, home: Path, relays: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    from .daemon.app import read_runtime

    args = EXE + ["daemon", "run", "--port", "0"] + [a for r in relays for a in ("--relay", r)]
    child = procs.start(args, env=_env(home), log=home / "daemon.log")

    def up() -> Any:
        if child.poll() is not None:
            raise DemoFailed(f"the daemon in {home} exited: {(home / 'daemon.log').read_text()[-500:]}")
        return read_runtime(home)

    url = _wait(up, f"the daemon in {home}").url

    def connected() -> bool:
        status = json.loads(_cli(home, "daemon", "status", "--json"))
        return all(r["state"] == "connected" for r in status["relays"])

    try:
        _wait(connected, "", timeout=10)
    except DemoFailed:
        raise DemoFailed(f"the daemon cannot reach {', '.join(relays)}; see {home / 'daemon.log'}") from None
    return child, url


def _sign_and_publish(home: Path, *templates: Any) -> list[Event]:
    """``event sign`` then ``publish`` (through the user's running daemon)."""
    signed = _cli(home, "event", "sign", stdin="\n".join(json.dumps(t.to_dict()) for t in templates))
    results = _json_lines(_cli(home, "publish", stdin=signed))
    refused = [r for r in results if not r["accepted"]]
    if refused:
        raise DemoFailed(f"the daemon refused {refused}")
    return [Event.from_dict(obj) for obj in _json_lines(signed)]


def _fetch(url: str, filters: list[Filter], *, as_keys: Any = None) -> list[Event]:
    """Read from a daemon's local endpoint as any Nostr client would (AUTH as ``as_keys``)."""
    from .daemon.relays import RelayPool
    from .event import verify_event

    async def go() -> list[Event]:
        kwargs: dict[str, Any] = {"verify": verify_event}
        if as_keys is not None:
            kwargs["sign"] = LocalSigner(as_keys).sign_event
        async with RelayPool(**kwargs) as pool:
            return await pool.fetch(filters, [url], timeout=5)

    return asyncio.run(go())


def round_trip(relays: list[str], work: Path, procs: Processes) -> dict[str, Any]:
    """The whole story; returns what a test or ``--json`` wants to check."""
    teacher, learner = work / "instructor", work / "learner"
    if not relays:
        relays = [_start_local_relay(procs, work)]
        _say(f"relay       rust-nostr relay on {relays[0]} (child pid {procs.children[-1].pid})")
    now = _CLOCK.now()
    ids: dict[str, Any] = {}
    for name, home in (("instructor", teacher), ("learner", learner)):
        profile = json.loads(_cli(home, "keys", "generate"))
        ids[name] = profile["pubkey"]
        _say(f"{name:<11} {profile['npub']} (key encrypted in {home}/key.ncryptsec)")

    lists = (relay_list_template(RelayList.of(relays, relays), created_at=now), inbox_relays_template(relays, created_at=now))
    teacher_daemon, teacher_url = _start_daemon(procs, teacher, relays)
    _say(f"daemon      instructor's serves {teacher_url}")
    _sign_and_publish(teacher, *lists)

    course_d, lesson_d = "python-basics", "python-basics-live-1"
    course_coord = f"{kinds.COURSE}:{ids['instructor']}:{course_d}"
    start = now + 2 * 86400
    lesson = kinds.Lesson(
        author=ids["instructor"], d=lesson_d, title="Python basics, live", start=start, end=start + 3600,
        instructor=ids["instructor"], summary="Live Q&A on the first module", start_tzid="Europe/Berlin",
        course=course_coord, max_participants=20, waiting_room=True, e2ee_required=True,
    )
    course = kinds.Course(
        author=ids["instructor"], d=course_d, title="Python basics", lessons=(lesson.coordinate,),
        certification_enabled=True, validity_days=365, required_lessons=(lesson.coordinate,),
    )
    _sign_and_publish(teacher, kinds.build_course(course, created_at=now), kinds.build_lesson(lesson, created_at=now))
    _say(f"published   course {course_coord}")
    _say(f"            lesson {lesson.coordinate} (NIP-52 31923, starts in 48 h)")

    learner_config = {"relays": relays, "follow": {"courses": [course_coord]}}
    learner.mkdir(parents=True, exist_ok=True)
    (learner / "config.toml").write_text(
        f"relays = {json.dumps(learner_config['relays'])}\n\n[follow]\ncourses = {json.dumps([course_coord])}\n"
    )
    learner_daemon, learner_url = _start_daemon(procs, learner, relays)
    _say(f"daemon      learner's serves {learner_url}, following the course")
    _sign_and_publish(learner, *lists)

    lesson_filter = [Filter(kinds=frozenset({kinds.LESSON}), tags={"a": frozenset({course_coord})})]
    seen = _wait(lambda: _fetch(learner_url, lesson_filter), "the learner's daemon to index the lesson")
    indexed = kinds.parse_lesson(seen[0])
    _say(f"indexed     learner's daemon has the lesson {indexed.title!r} ({indexed.duration_minutes} min)")

    (rsvp,) = _sign_and_publish(learner, kinds.build_rsvp(indexed, "accepted", created_at=_CLOCK.now()))
    _say(f"rsvp        learner answered accepted ({rsvp.id[:16]}...)")
    rsvp_filter = [Filter(kinds=frozenset({kinds.RSVP}), tags={"a": frozenset({lesson.coordinate})})]
    got = _wait(lambda: _fetch(teacher_url, rsvp_filter), "the instructor's daemon to index the RSVP")
    seats = roster(indexed, [kinds.parse_rsvp(e) for e in got])
    _say(f"roster      instructor's daemon: {len(seats.confirmed)} confirmed, {len(seats.waitlist)} waitlisted")

    room = f"{kinds.ROOM}:{ids['instructor']}:{lesson_d}-room"
    room_key = secrets.token_bytes(32)
    rumor = kinds.build_room_key(room, room_key, 1, created_at=_CLOCK.now())
    wraps = _cli(teacher, "wrap", "--to", ids["learner"], stdin=json.dumps(rumor.to_dict()))
    _cli(teacher, "publish", stdin=wraps)
    _say("room key    gift-wrapped (NIP-59) to the learner's inbox relays")

    learner_keys = load_key_file(learner / "key.ncryptsec", PASSWORD)
    wrap_filter = [Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({ids["learner"]})})]
    anonymous = _fetch(learner_url, wrap_filter)
    found = _wait(lambda: _fetch(learner_url, wrap_filter, as_keys=learner_keys), "the learner's daemon to index the wrap")
    opened = _json_lines(_cli(learner, "unwrap", stdin=found[0].to_json()))
    key = kinds.parse_room_key(Event.from_dict(opened[0], rumor=True))
    if key.key != room_key or opened[0]["pubkey"] != ids["instructor"]:
        raise DemoFailed("the unwrapped room key is not the one the instructor sent")
    _say(f"unwrapped   learner holds the room key (epoch {key.epoch}, from the instructor); "
         f"served only after AUTH ({len(anonymous)} wraps without it)")

    statuses = {}
    for name, home in (("instructor", teacher), ("learner", learner)):
        statuses[name] = json.loads(_cli(home, "daemon", "status", "--json"))
        _say(f"\n{name}'s daemon status:")
        _say(_cli(home, "daemon", "status").rstrip())
    for child in (learner_daemon, teacher_daemon):
        code = procs.stop(child)
        if code != 0:
            raise DemoFailed(f"a daemon exited {code} on SIGTERM")
    _say("\nstopped     both daemons (SIGTERM, clean exit)")
    return {
        "relays": relays,
        "instructor": ids["instructor"],
        "learner": ids["learner"],
        "course": course_coord,
        "lesson": lesson.coordinate,
        "rsvp": rsvp.id,
        "confirmed": list(seats.confirmed),
        "room_key_delivered": True,
        "wraps_without_auth": len(anonymous),
        "status": statuses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nostr_training.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--relay", action="append", default=[], metavar="URL", help="use these relays instead of starting one")
    parser.add_argument("--work-dir", type=Path, help="keep the users' data dirs here (default: a temp dir, removed)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    parser.add_argument("--serve-relay", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    if args.serve_relay:
        asyncio.run(_serve_relay(args.serve_relay))
        return 0
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="nostr-training-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    procs = Processes()
    try:
        summary = round_trip(args.relay, work, procs)
    except (DemoFailed, NostrTrainingError) as exc:
        procs.stop_all()
        print(f"demo: {exc} (logs kept in {work})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        procs.stop_all()
        return 130
    procs.stop_all()
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(summary))
    else:
        _say("round trip  ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
