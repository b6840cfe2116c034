"""Save a screenshot of each state of the web view under docs/screenshots/.

Runs the browser tests (tests/web/test_web_browser.py: a real relay on loopback, daemons on a
ManualClock, Debian's chromium) with ``NT_SCREENSHOTS`` set, so every picture is of a state the
tests also assert: learner before / waiting / during / after, instructor, certificate. Prints
each file's size; the README shows them.

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "screenshots"
EXPECTED = ("learner-before", "learner-during-waiting", "learner-during", "learner-after", "instructor", "certificate")
LIMIT = 150 * 1024


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NT_SCREENSHOTS": str(OUT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(REPO / "tests" / "web" / "test_web_browser.py")],
        cwd=REPO, env=env,
    )
    if done.returncode != 0:
        print("the browser tests failed: screenshots may be missing", file=sys.stderr)
        return done.returncode
    status = 0
    for name in EXPECTED:
        path = OUT / f"{name}.png"
        if not path.exists():
            print(f"missing {path}", file=sys.stderr)
            status = 1
            continue
        size = path.stat().st_size
        print(f"{path.relative_to(REPO)}  {size / 1024:.0f} KiB{'  (over 150 KiB: do not commit)' if size > LIMIT else ''}")
    return status


if __name__ == "__main__":
    sys.exit(main())
