"""What a remote signer costs: NIP-46 round trips to NDK's NIP-46 backend over a loopback relay.

    python benchmarks/nip46_roundtrip.py [--calls 50] [--learners 30] [--repeat 3]

Needs NDK in .test-tools/ndk (the interop tests install it) and node. Measures, for the same
work, ``RemoteSigner`` (rust-nostr relay on 127.0.0.1 plus tests/interop/ndk_bunker.mjs)
against ``LocalSigner`` in the same run: --calls sequential ``sign_event`` calls, the same
number of ``nip44_encrypt`` calls, and gift-wrapping one room key to --learners learners (two
round trips per learner). Every figure is the best of --repeat runs; the ratio is remote over
local.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from nostr_training.daemon.relays import RelayPool  # noqa: E402
from nostr_training.event import EventTemplate  # noqa: E402
from nostr_training.keys import Keys  # noqa: E402
from nostr_training.nips import nip46, nip59  # noqa: E402
from nostr_training.remote_signer import RemoteSigner  # noqa: E402
from nostr_training.signer import LocalSigner  # noqa: E402

from relay_servers import start_rust_relay  # noqa: E402

NOW = 1_800_000_000


async def best(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await run()
        times.append(time.perf_counter() - start)
    return min(times)


async def measure(signer, calls: int, learners: list[str], repeat: int) -> dict[str, float]:
    peer = Keys.generate().public_key

    async def sign() -> None:
        for i in range(calls):
            await signer.sign_event(EventTemplate(1, (), f"event {i}", NOW))

    async def encrypt() -> None:
        for i in range(calls):
            await signer.nip44_encrypt(peer, f"payload {i}")

    async def wrap() -> None:
        await nip59.gift_wrap_many(EventTemplate(8310, (), "room key", NOW), signer, learners, now=NOW)

    return {"sign_event": await best(repeat, sign), "nip44_encrypt": await best(repeat, encrypt),
            "gift_wrap": await best(repeat, wrap)}


def start_bunker(ndk: Path, relay: str, user: Keys) -> tuple[subprocess.Popen[str], str]:
    """The NDK backend as a child process, and the bunker URI it prints once it listens."""
    bunker = subprocess.Popen(["node", str(ROOT / "tests" / "interop" / "ndk_bunker.mjs"), str(ndk)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert bunker.stdin is not None and bunker.stdout is not None
    bunker.stdin.write(json.dumps({"relay": relay, "secret_key": user.secret_hex, "connect_secret": "bench"}))
    bunker.stdin.close()
    return bunker, bunker.stdout.readline().split(" ", 1)[1].strip()


async def main(calls: int, learner_count: int, repeat: int) -> None:
    ndk = ROOT / ".test-tools" / "ndk"
    if not (ndk / "node_modules" / "@nostr-dev-kit" / "ndk").exists():
        sys.exit("NDK is not installed: run the interop tests once (pytest tests/test_nip46_interop.py)")
    relay = start_rust_relay(Path(tempfile.mkdtemp(prefix="bench-nip46-")), notes_per_minute=10_000_000)
    user = Keys.generate()
    bunker, uri = start_bunker(ndk, relay.url, user)
    try:
        learners = [Keys.generate().public_key for _ in range(learner_count)]
        local = await measure(LocalSigner(user), calls, learners, repeat)
        async with RelayPool() as pool:
            signer = RemoteSigner(pool, Keys.generate(), nip46.parse_bunker_uri(uri), request_timeout=30)
            await signer.connect()
            remote = await measure(signer, calls, learners, repeat)
    finally:
        bunker.kill()
        bunker.wait(10)
        relay.stop()
    print(f"{'work':<34}{'local s':>10}{'remote s':>10}{'ratio':>9}{'ms/call':>9}")
    rows = (("sign_event", f"{calls} x sign_event", calls), ("nip44_encrypt", f"{calls} x nip44_encrypt", calls),
            ("gift_wrap", f"gift wrap to {learner_count} learners", 2 * learner_count))
    for key, label, round_trips in rows:
        ratio = remote[key] / local[key]
        print(f"{label:<34}{local[key]:>10.4f}{remote[key]:>10.4f}{ratio:>9.0f}{1000 * remote[key] / round_trips:>9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.learners, args.repeat))
