"""The terminal QR code for nostrconnect:// URIs, read back by an independent decoder (jsQR from
npm, installed on first use into the git-ignored .test-tools/jsqr) across versions 1 to 40."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nostr_training.errors import EncodingError
from nostr_training.keys import Keys
from nostr_training.qr import encode, render_terminal
from nostr_training.remote_signer import RemoteSigner

REPO = Path(__file__).resolve().parent.parent
JSQR_DIR = REPO / ".test-tools" / "jsqr"
JSQR_VERSION = "1.4.0"
DECODER = Path(__file__).resolve().parent / "interop" / "jsqr_decode.mjs"


@pytest.fixture(scope="module")
def jsqr() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed to read QR codes back with jsQR")
    package = JSQR_DIR / "node_modules" / "jsqr" / "package.json"
    if not package.exists() or json.loads(package.read_text())["version"] != JSQR_VERSION:
        JSQR_DIR.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(JSQR_DIR), f"jsqr@{JSQR_VERSION}"],
                              capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            pytest.fail(f"cannot install jsqr: {proc.stderr.strip().splitlines()[-1:]}")
    return JSQR_DIR


def decode_all(jsqr: Path, symbols: list[list[list[bool]]]) -> list[str | None]:
    rows = [["".join("1" if dark else "0" for dark in row) for row in symbol] for symbol in symbols]
    proc = subprocess.run(["node", str(DECODER), str(jsqr)], input=json.dumps(rows), capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(proc.stdout)


def test_texts_of_every_size_read_back(jsqr):
    lengths = [1, 15, 135, 400, 700, 1300, 2331]
    texts = [("nostrconnect-" * 200)[:n] for n in lengths] + ["é ✓ 中文 " * 30]
    symbols = [encode(text) for text in texts]
    versions = sorted({(len(s) - 17) // 4 for s in symbols})
    assert versions[0] == 1 and versions[-1] == 40 and len(versions) == len(texts)
    assert decode_all(jsqr, symbols) == texts


def test_a_nostrconnect_uri_reads_back_from_its_terminal_rendering(jsqr):
    uri = str(RemoteSigner.nostrconnect_uri(Keys.generate(), ["wss://relay.nsec.app", "wss://relay.example.com"]))
    symbol = encode(uri)
    text = render_terminal(symbol, quiet=2)
    # read the half blocks back: a drawn (light) upper/lower half is a light module
    upper = {"█": True, "▀": True, "▄": False, " ": False}
    lower = {"█": True, "▀": False, "▄": True, " ": False}
    lines = text.split("\n")
    light_rows = []
    for line in lines:
        light_rows.append([upper[c] for c in line])
        light_rows.append([lower[c] for c in line])
    size = len(symbol)
    read = [[not light_rows[y + 2][x + 2] for x in range(size)] for y in range(size)]
    assert read == symbol
    assert all(light_rows[y][x] for y in (0, 1) for x in range(size + 4))  # the quiet zone is drawn light
    assert decode_all(jsqr, [read]) == [uri]


def test_too_much_for_a_qr_code_is_an_encoding_error():
    with pytest.raises(EncodingError, match="2954 bytes"):
        encode("x" * 2954)
