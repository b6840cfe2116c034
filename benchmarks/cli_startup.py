"""Start-up time of the CLI against ``python -c pass`` in the same interpreter and venv.

    python benchmarks/cli_startup.py --runs 15

Times whole processes, the way a user (or a script calling the toolbox in a loop) pays for them:
``nostr-training --help``, ``nostr-training event verify`` with one signed event on stdin, and
``python -c pass``. The three run in turn, round after round, so machine drift hits them alike;
prints min and median wall time of each and the ratio of each median to the baseline's (target
<= 3x). Bytecode is cached as an installed package has it (in a temporary
``PYTHONPYCACHEPREFIX``, even where ``PYTHONDONTWRITEBYTECODE`` is set, which would otherwise
recompile every module of the package on every start). ``-X importtime`` of a command shows what
it still imports.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nostr_training.event import EventTemplate, sign_event


def command_path() -> list[str]:
    """The installed ``nostr-training`` script next to this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("nostr-training")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nostr_training.cli"]


def signed_event() -> bytes:
    secret = hashlib.sha256(b"cli-startup-bench").digest()
    event = sign_event(EventTemplate(1, (("t", "bench"),), "start-up", 1_800_000_000), secret)
    return event.to_json().encode() + b"\n"


def timed(argv: list[str], stdin: bytes, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.decode()[:300]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    cli = command_path()
    event = signed_event()
    cases = {
        "python -c pass": ([sys.executable, "-c", "pass"], b""),
        "nostr-training --help": ([*cli, "--help"], b""),
        "nostr-training event verify": ([*cli, "event", "verify"], event),
    }
    with tempfile.TemporaryDirectory(prefix="cli-startup-pycache-") as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for argv, stdin in cases.values():  # warm the OS caches and write the .pyc files
            timed(argv, stdin, env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, (argv, stdin) in cases.items():
                times[name].append(timed(argv, stdin, env))
    baseline = statistics.median(times["python -c pass"])
    print(f"{args.runs} runs each, in turn; python {sys.version.split()[0]}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:30s} min {min(samples) * 1e3:7.1f} ms   median {median * 1e3:7.1f} ms   ratio {median / baseline:5.2f}")
    print("target: --help and event verify <= 3.00x python -c pass")


if __name__ == "__main__":
    main()
