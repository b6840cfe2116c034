"""The main job (``nostr-training demo``, ``./dev run``): a whole class over a real relay, three
daemons on one accelerated clock; its summary checked against the rules."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nostr_training.demo import DemoSummary, LearnerSummary, Progress, _inspect_hint, render_summary
from nostr_training.rules.completion import LiveCompletionRule

REPO = Path(__file__).resolve().parent.parent
LESSON_SECONDS = 60 * 60


def demo_env(tmpdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOSTR_TRAINING_")}
    env["TMPDIR"] = str(tmpdir)
    return env


def run_demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The demo as ``./dev run`` starts it; its temporary files go under ``cwd``."""
    return subprocess.run([sys.executable, "-m", "nostr_training.demo", *args], capture_output=True, text=True,
                          timeout=240, cwd=cwd, env=demo_env(cwd), check=False)


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except OSError:
        return True


def relay_port(url: str) -> int:
    found = re.fullmatch(r"ws://127\.0\.0\.1:(\d+)", url)
    assert found, url
    return int(found.group(1))


def start_demo_until_its_relay_is_up(cwd: Path) -> tuple[subprocess.Popen[str], int]:
    """The demo as ``./dev run`` starts it, read until its first step names the local relay
    (by then the relay accepts connections and the daemons are running)."""
    child = subprocess.Popen([sys.executable, "-m", "nostr_training.demo"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=cwd, env=demo_env(cwd))
    assert child.stdout is not None
    for line in child.stdout:
        found = re.search(r"ws://127\.0\.0\.1:\d+", line)
        if line.startswith("[ 1]") and found:
            port = relay_port(found.group(0))
            assert not refuses_connections(port), "the relay is up"
            return child, port
    child.wait(timeout=60)
    raise AssertionError(f"the demo exited {child.returncode} before its relay was up: {child.stderr.read()[-2000:]}")


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """One run of the demo with its data dirs kept (the tests below read its summary and files)."""
    work = tmp_path_factory.mktemp("demo") / "class"
    done = run_demo("--json", "--keep", str(work), cwd=tmp_path_factory.mktemp("cwd"))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints the summary alone"
    return work, json.loads(lines[0])


@pytest.mark.relay
def test_the_summary_follows_the_completion_rule(kept):
    _, summary = kept
    learners = {s["name"]: s for s in summary["learners"]}
    assert set(learners) == {"ada", "bo"}
    required = LiveCompletionRule().required_seconds(LESSON_SECONDS)
    # Ada stayed 20 of 60 minutes (dropped and reconnected once); Bo stayed 35.
    assert learners["ada"]["attended_minutes"] == 20 and learners["ada"]["joins"] == 2
    assert learners["bo"]["attended_minutes"] == 35 and learners["bo"]["joins"] == 1
    for learner in learners.values():
        assert learner["completed"] is (learner["attended_minutes"] * 60 >= required), learner
    assert learners["bo"]["completed"] and not learners["ada"]["completed"]


@pytest.mark.relay
def test_the_certificate_goes_to_who_completed_and_verifies_offline(kept):
    work, summary = kept
    learners = {s["name"]: s for s in summary["learners"]}
    assert learners["bo"]["certificate"] == "valid" and learners["bo"]["crm_requirement_met"] is True
    assert learners["ada"]["certificate"] == "not issued" and "not complete" in learners["ada"]["certificate_detail"]
    assert learners["ada"]["crm_requirement_met"] is False
    assert summary["certificate_verified_offline"] == "valid"
    bundle = work / "certificate-bo.json"
    assert bundle.is_file()
    fresh = work.parent / "stranger"
    fresh.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOSTR_TRAINING_")}
    verified = subprocess.run([sys.executable, "-m", "nostr_training.cli", "cert", "verify", str(bundle), "--json",
                               "--data-dir", str(fresh)], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["status"] == "valid"


@pytest.mark.relay
def test_the_recording_completes_at_90_percent(kept):
    _, summary = kept
    learners = {s["name"]: s for s in summary["learners"]}
    assert learners["bo"]["recording_watched_percent"] == 90 and learners["ada"]["recording_watched_percent"] == 50
    assert learners["bo"]["recording_completed"] is True and learners["ada"]["recording_completed"] is False


@pytest.mark.relay
def test_each_reminder_is_counted_once(kept):
    _, summary = kept
    learners = {s["name"]: s for s in summary["learners"]}
    for learner in learners.values():
        assert len(learner["reminders"]) == len(set(learner["reminders"])) == learner["reminders_received"], learner
    # Ada held the seat 24 hours before, then declined: she got the 24 h reminder and nothing after.
    assert learners["ada"]["reminders"] == ["24h"]
    # Bo was promoted from the waitlist 20 hours before: a seat-opened DM, then the 1 h, the start
    # and, once the recording was published, the recording.
    assert learners["bo"]["reminders"] == ["promoted", "1h", "starting", "recording_ready"]
    assert learners["ada"]["rsvp"] == "declined" and learners["bo"]["rsvp"] == "confirmed"


@pytest.mark.relay
def test_each_learner_holds_a_proof_that_verifies_offline_and_a_stranger_sees_nothing_private(kept):
    work, summary = kept
    for learner in summary["learners"]:
        assert learner["proof_verified_offline"] == "valid", learner
        proof = work / f"attendance-{learner['name']}.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOSTR_TRAINING_")}
        checked = subprocess.run([sys.executable, "-m", "nostr_training.cli", "attendance", "verify", str(proof), "--json"],
                                 capture_output=True, text=True, timeout=60, env=env, check=False)
        assert checked.returncode == 0, checked.stderr
    outsider = summary["outsider"]
    assert outsider["leaks"] == [] and outsider["events"] > 0
    # The story's private lesson (a course and its lesson) and its one learner were looked for.
    assert outsider["private_items"] == 2 and outsider["learners"] == 1
    assert "31930" not in outsider["by_kind"] and "31931" not in outsider["by_kind"]


@pytest.mark.relay
def test_it_leaves_the_data_dirs_it_was_asked_to_keep_and_nothing_running(kept):
    work, summary = kept
    assert summary["kept"] == str(work)
    for name in ("instructor", "ada", "bo"):
        assert (work / name / "index.sqlite").exists()
        assert not (work / name / "daemon.json").exists(), "a stopped daemon leaves no runtime file"
    assert (work / "blossom").is_dir() and any((work / "blossom").iterdir()), "the recording's blob"
    (url,) = summary["relays"]
    assert refuses_connections(relay_port(url)), "the local relay is stopped"
    # The class spans a day and more of daemon time, from the clock the demo moved.
    assert 26 * 3600 < summary["daemon_seconds"] < 30 * 3600


@pytest.mark.relay
def test_a_kept_class_is_its_owners_alone(kept):
    work, _ = kept
    assert (work / "contacts.csv").is_file() and (work / "attendance-bo.json").is_file()
    for path in (work, *work.rglob("*")):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


@pytest.mark.relay
def test_the_keep_hint_runs_as_printed_without_the_venv_on_path(kept, tmp_path):
    work, summary = kept
    copy = tmp_path / "class copy"  # a space in the path: the hint quotes it
    shutil.copytree(work, copy)
    hint = _inspect_hint(copy, summary["lesson"])
    commands = [line.strip() for line in hint.splitlines() if line.startswith("  ")]
    script = str(Path(sys.executable).with_name("nostr-training"))
    assert all(not c.startswith("nostr-training") for c in commands), "bare nostr-training is not on PATH"
    daemon = next(c for c in commands if " daemon run " in c)
    assert f"2>'{copy / 'bo-daemon.log'}' &" in daemon and commands[-1].startswith("kill %1")
    # The read-only lines, run by a shell whose PATH has no .venv/bin.
    readonly = [c for c in commands if not any(w in c for w in (" daemon run ", " open ", "kill "))]
    assert len(readonly) == 5 and all(c.startswith(script) for c in readonly[1:]), readonly
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOSTR_TRAINING_")}
    env["PATH"] = "/usr/bin:/bin"
    ran = subprocess.run(["bash", "-euc", "\n".join(readonly)], capture_output=True, text=True, timeout=120,
                         env=env, cwd=tmp_path, check=False)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "role-play" in ran.stdout and "VALID" in ran.stdout


@pytest.mark.relay
def test_plain_output_has_a_line_per_step_and_the_summary_table(tmp_path):
    done = run_demo(cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    steps = [line for line in lines if line.startswith("[")]
    assert len(steps) >= 10 and "\r" not in done.stdout, "plain lines when stdout is not a terminal"
    assert not re.search(r"daemon time \d{4}-", "".join(steps)), "the clock ticks show on a terminal only"
    assert any("Ada: not issued (not complete)" in step for step in steps), "the refusal's gist, not a cut"
    header = next(line for line in lines if line.startswith("learner"))
    assert "attended" in header and "joins" in header and "certificate" in header and "reminders received" in header
    assert any(line.startswith("Bo ") and "35 of 60 min" in line and "seat opened" in line and "recording ready" in line
               for line in lines)
    assert all(line == line.rstrip() for line in lines), "no trailing spaces"
    assert re.search(r"s wall time for 2\d\.\d hours of daemon time$", done.stdout.strip().splitlines()[-1])
    assert not list(tmp_path.iterdir()), "without --keep nothing is left behind"


@pytest.mark.relay
def test_sigterm_stops_the_relay_and_removes_the_temporary_files(tmp_path):
    child, port = start_demo_until_its_relay_is_up(tmp_path)
    assert list(tmp_path.iterdir()), "the run's temporary dir"
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert err.strip() == "nostr-training: demo: stopped by SIGTERM: the relay and daemons are stopped"
    assert refuses_connections(port), "the relay child is stopped"
    assert not list(tmp_path.iterdir()), "the temporary files are removed"


@pytest.mark.relay
def test_a_killed_demo_leaves_no_relay_serving(tmp_path):
    child, port = start_demo_until_its_relay_is_up(tmp_path)
    child.kill()  # SIGKILL: no cleanup runs; the relay notices its parent is gone
    child.communicate(timeout=60)
    deadline = time.monotonic() + 60
    while not refuses_connections(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert refuses_connections(port), "the orphaned relay exits"


def test_progress_on_a_terminal_rewrites_one_line_per_step():
    out = io.StringIO()
    progress = Progress(out, tty=True, quiet=False)
    progress.begin("reminders")
    progress.tick("daemon time 2026-12-01 10:00 UTC")
    progress.tick("daemon time 2026-12-01 10:10 UTC")
    progress.done("3 sent")
    progress.begin("room")
    progress.done()
    text = out.getvalue()
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 3, "one finished line per step"
    assert all(line.count("✓") == 1 for line in lines[:2])
    first = lines[0].split("\r")
    # Each rewrite starts at the line's beginning and clears it: begin, two ticks, the check mark.
    assert len(first) == 5 and all(part.startswith("\033[K") for part in first[1:])
    assert "[ 1] reminders ..." in first[1] and first[2].endswith("10:00 UTC") and first[3].endswith("10:10 UTC")
    assert "[ 1] reminders: 3 sent" in first[4] and "daemon time" not in first[4]
    assert "[ 2] room" in lines[1]


def test_plain_progress_prints_finished_steps_only():
    out = io.StringIO()
    progress = Progress(out, tty=False, quiet=False)
    progress.begin("reminders")
    progress.tick("daemon time 2026-12-01 10:00 UTC")
    progress.done("3 sent")
    progress.interrupted()
    assert out.getvalue() == "[ 1] reminders: 3 sent\n"


def test_the_summary_table_reads_as_words_and_the_json_keeps_the_wire_names():
    learner = LearnerSummary(name="bo", npub="npub1x", rsvp="confirmed", attended_minutes=35, joins=1, completed=True,
                             certificate="valid", certificate_detail="code X", reminders=["promoted", "24h", "recording_ready"],
                             crm_requirement_met=True, recording_watched_percent=90, recording_completed=True)
    summary = DemoSummary(relays=["ws://127.0.0.1:1"], learners=[learner], seconds=9.5, daemon_seconds=27 * 3600 + 1800)
    text = render_summary(summary)
    assert "3 (seat opened, 24 h before, recording ready)" in text
    assert text.splitlines()[-1] == "9.5 s wall time for 27.5 hours of daemon time"
    assert all(line == line.rstrip() for line in text.splitlines())
    assert summary.to_dict()["learners"][0]["reminders"] == ["promoted", "24h", "recording_ready"]


@pytest.mark.relay
def test_a_relay_that_is_not_there_fails_with_one_line(tmp_path):
    done = run_demo("--relay", "ws://127.0.0.1:9", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("nostr-training: demo: ") and len(done.stderr.strip().splitlines()) == 1
