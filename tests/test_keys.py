"""Keys: the accepted text forms, the key file on disk, and that the secret never leaks."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from nostr_training.errors import ConfigError, InvalidKey
from nostr_training.keys import Keys, load_key_file, save_key_file
from nostr_training.nips import nip49

NSEC = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"
SECRET_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
NPUB = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"
PUBKEY = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
FAST = 4


@pytest.mark.parametrize(
    "text",
    [NSEC, f"  {NSEC}\n", f"nostr:{NSEC}", NSEC.upper(), SECRET_HEX, SECRET_HEX.upper(), f"\t{SECRET_HEX}\r\n"],
    ids=["nsec", "nsec-spaces", "nostr-uri", "nsec-upper", "hex", "hex-upper", "hex-spaces"],
)
def test_parse_accepts_nsec_and_hex(text):
    keys = Keys.parse(text)
    assert keys.secret_hex == SECRET_HEX
    assert keys.public_key == PUBKEY
    assert keys.npub == NPUB
    assert keys.nsec == NSEC


@pytest.mark.parametrize(
    "text",
    [NPUB, SECRET_HEX[:-2], "zz" * 32, "0" * 64, "f" * 64, NSEC[:-1] + "q", "", "nsec1"],
    ids=["npub", "short-hex", "not-hex", "zero", "over-n", "bad-checksum", "empty", "bare-prefix"],
)
def test_parse_refuses_everything_else(text):
    with pytest.raises(InvalidKey):
        Keys.parse(text)


def test_secret_is_never_in_repr_or_str(keys, caplog):
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("loaded %s / %r", keys, keys)
    for shown in (repr(keys), str(keys), f"{keys}", caplog.text):
        assert keys.secret_hex not in shown
        assert keys.nsec not in shown
        assert keys.public_key in shown


def test_ncryptsec_round_trip(keys):
    encrypted = keys.to_ncryptsec("pw", log_n=FAST)
    assert nip49.parameters(encrypted).log_n == FAST
    assert Keys.from_ncryptsec(encrypted + "\n", "pw") == keys


def test_save_then_load(tmp_path, keys):
    path = tmp_path / "data" / "nested" / "key.ncryptsec"
    assert save_key_file(path, keys, "correct horse", log_n=FAST) == path
    assert load_key_file(path, "correct horse") == keys

    content = path.read_text()
    assert content.startswith("ncryptsec1") and content.endswith("\n")
    assert content.strip() == content.split()[0] and len(content.split()) == 1
    assert nip49.decrypt(content.strip(), "correct horse") == keys.secret
    raw = path.read_bytes()
    for form in (keys.secret_hex, keys.secret_hex.upper(), keys.nsec):
        assert form.encode() not in raw
    assert keys.secret not in raw

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(path.parent) == ["key.ncryptsec"]


def test_existing_parent_directory_mode_is_left_alone(tmp_path, keys):
    tmp_path.chmod(0o755)
    save_key_file(tmp_path / "key.ncryptsec", keys, "pw", log_n=FAST)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_overwrite_is_refused_unless_asked(tmp_path, keys):
    path = tmp_path / "key.ncryptsec"
    save_key_file(path, keys, "pw", log_n=FAST)
    before = path.read_text()
    other = Keys.generate()
    with pytest.raises(ConfigError, match="exists"):
        save_key_file(path, other, "pw", log_n=FAST)
    assert path.read_text() == before
    save_key_file(path, other, "pw", log_n=FAST, overwrite=True)
    assert load_key_file(path, "pw") == other
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["key.ncryptsec"]


def test_load_missing_file_says_how_to_create_one(tmp_path):
    with pytest.raises(ConfigError, match="nostr-training keys generate"):
        load_key_file(tmp_path / "nope.ncryptsec", "pw")


def test_load_with_wrong_password_or_wrong_content(tmp_path, keys):
    path = tmp_path / "key.ncryptsec"
    save_key_file(path, keys, "pw", log_n=FAST)
    with pytest.raises(ConfigError, match="wrong password"):
        load_key_file(path, "PW")
    path.write_text(keys.nsec + "\n")
    with pytest.raises(ConfigError, match="ncryptsec"):
        load_key_file(path, "pw")


def test_empty_password_is_refused(tmp_path, keys):
    with pytest.raises(ConfigError, match="password"):
        save_key_file(tmp_path / "key.ncryptsec", keys, "", log_n=FAST)
    assert not (tmp_path / "key.ncryptsec").exists()


def test_unwritable_location_is_a_config_error(tmp_path, keys):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write"):
        save_key_file(blocker / "key.ncryptsec", keys, "pw", log_n=FAST)
