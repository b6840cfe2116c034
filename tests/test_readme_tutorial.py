"""README.md's "Use it for real" tutorial, run as written: its ``sh`` blocks in order, in one
bash, with rust-nostr's relay on 127.0.0.1 as ``$RELAY`` and a temporary ``$HOME``.

A block whose first line says it is "not run by tests/test_readme_tutorial.py" (the systemd
unit) is shown, not run. Everything the tutorial starts is stopped: the tutorial stops its
daemons itself, and the test stops what is left of the shell's process group by its id.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from relay_servers import start_rust_relay

pytestmark = pytest.mark.relay

REPO = Path(__file__).resolve().parent.parent
SECTION = "## Use it for real"
NOT_RUN = "not run by tests/test_readme_tutorial.py"


def tutorial_blocks(readme: str) -> list[str]:
    """The fenced ``sh`` blocks of the tutorial section, in order, without the ones marked not run."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start:end if end != -1 else None]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)
    return [b for b in blocks if NOT_RUN not in b.splitlines()[0]]


def test_the_tutorial_section_has_every_step():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    script = "\n".join(tutorial_blocks(readme))
    for step in ("keys generate", "relays set", "daemon run", "course create", "lesson schedule", "rsvp answer",
                 "session start", "session end", "attendance show", "cert verify", "crm require"):
        assert f"nostr-training {step}" in script or f"learner {step}" in script, step
    assert "systemctl" not in script, "the service block is shown, not run"
    assert "systemctl --user enable" in readme[readme.index(SECTION):]


def test_the_tutorial_runs_in_order(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    # xtrace: a failure or a wait that never ends names the command it stopped at
    script = "set -euxo pipefail\ncd \"$HOME\"\n" + "\n".join(tutorial_blocks(readme))
    home = tmp_path / "home"
    home.mkdir()
    relay = start_rust_relay(tmp_path / "relay", notes_per_minute=100_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOSTR_TRAINING_", "XDG_"))}
    scratch = tmp_path / "tmp"  # the tutorial's mktemp dirs land here, not in the machine's TMPDIR
    scratch.mkdir()
    env.update(HOME=str(home), RELAY=relay.url, TZ="UTC", TMPDIR=str(scratch), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    shell = subprocess.Popen(["bash", "-c", script], env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        try:
            out, err = shell.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            os.killpg(shell.pid, signal.SIGKILL)
            out, err = shell.communicate()
            logs = "\n".join(f"{p.name}:\n{p.read_text()[-1500:]}" for p in home.glob("*.log"))
            pytest.fail(f"the tutorial did not finish; stderr:\n{err[-4000:]}\n{logs}")
    finally:
        try:
            os.killpg(shell.pid, signal.SIGKILL)  # the tutorial's own group: whatever it left running
        except ProcessLookupError:
            pass
        relay.stop()
    assert shell.returncode == 0, f"stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}"
    assert "Ana Lima: met" in out
    assert re.search(r"^VALID: First aid", out, flags=re.M), out[-2000:]
    assert "join https://" in out, "the learner got the link once admitted"
    assert "confirmed" in out
    for data in (home / ".local" / "share" / "nostr-training", home / "learner"):  # instructor (XDG), learner
        assert (data / "index.sqlite").exists(), data
        assert not (data / "daemon.json").exists(), f"{data}: the tutorial stops both daemons"
