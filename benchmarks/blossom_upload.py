"""Blossom upload memory: a 200 MB recording uploads with memory flat.

Each measurement runs in its own child process, so its peak RSS (``ru_maxrss``) is its own:

- ``idle``: the interpreter with the client and the test server started, nothing sent;
- ``read``: the baseline, reading the whole file into memory (what a naive upload does);
- ``upload``: ``BlossomClient.upload_file`` of the file to the in-process BUD-02 server on
  127.0.0.1 (tests/blossom_server.py), which streams it to disk; both sides count;
- ``e2ee``: ``upload_recording(encrypt=True)``: encrypted to a temporary file, then uploaded.

Prints the three peaks, the upload's growth over idle as a share of the file size, and the
upload's peak as a ratio to the read baseline's, measured in the same run.

    python benchmarks/blossom_upload.py              # 200 MB
    python benchmarks/blossom_upload.py --mb 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _serve_and_maybe_upload(path: Path, mode: str) -> dict[str, float]:
    from blossom_server import BlossomServer

    from nostr_training.keys import Keys
    from nostr_training.media.blossom import BlossomClient
    from nostr_training.media.recording import upload_recording
    from nostr_training.signer import LocalSigner

    with tempfile.TemporaryDirectory() as store:
        async with (
            BlossomServer(Path(store)) as server,
            BlossomClient(server.url, LocalSigner(Keys.generate())) as client,
        ):
            if mode == "idle":
                return {"peak_mb": peak_mb(), "seconds": 0.0}
            started = time.perf_counter()
            if mode == "upload":
                descriptor = await client.upload_file(path, mime="video/webm")
                assert descriptor.size == path.stat().st_size
            else:
                uploaded = await upload_recording(client, path, mime="video/webm", encrypt=True)
                descriptor = uploaded.descriptor
                assert uploaded.plaintext_size == path.stat().st_size
            seconds = time.perf_counter() - started
            assert server.holds(descriptor.sha256)
            return {"peak_mb": peak_mb(), "seconds": seconds}


def child(mode: str, path: Path) -> None:
    if mode == "read":
        data = path.read_bytes()
        assert len(data) == path.stat().st_size
        result = {"peak_mb": peak_mb(), "seconds": 0.0}
    else:
        result = asyncio.run(_serve_and_maybe_upload(path, mode))
    print(json.dumps(result))


def measure(mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--file", str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="file size in MB (default 200)")
    parser.add_argument("--child", choices=("idle", "read", "upload", "e2ee"), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file)
        return
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "recording.webm"
        with open(path, "wb") as handle:
            handle.writelines(os.urandom(1 << 20) for _ in range(args.mb))
        size_mb = path.stat().st_size / (1 << 20)
        idle = measure("idle", path)
        read = measure("read", path)
        upload = measure("upload", path)
        e2ee = measure("e2ee", path)
    growth = upload["peak_mb"] - idle["peak_mb"]
    print(f"file size                  {size_mb:8.1f} MB")
    print(f"peak RSS, idle (started)   {idle['peak_mb']:8.1f} MB")
    print(f"peak RSS, read whole file  {read['peak_mb']:8.1f} MB   (baseline)")
    print(f"peak RSS, upload           {upload['peak_mb']:8.1f} MB   "
          f"({size_mb / upload['seconds']:.0f} MB/s through the loopback server)")
    print(f"peak RSS, encrypt+upload   {e2ee['peak_mb']:8.1f} MB   ({size_mb / e2ee['seconds']:.0f} MB/s)")
    print(f"upload growth over idle    {growth:8.1f} MB = {growth / size_mb:.1%} of the file size")
    print(f"upload peak / read peak    {upload['peak_mb'] / read['peak_mb']:8.2f}")


if __name__ == "__main__":
    main()
