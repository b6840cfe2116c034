"""Where files live, resolved without the CLI, and kept private to the user."""

from __future__ import annotations

import stat

from nostr_training.daemon.config import load_config, write_config
from nostr_training.paths import (
    config_dir,
    data_dir,
    default_key_file,
    make_private_dir,
    make_private_file,
    password_from_env,
    resolve_key_file,
)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("NOSTR_TRAINING_HOME", str(tmp_path / "env"))
    assert data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert data_dir() == config_dir() == tmp_path / "env"
    monkeypatch.delenv("NOSTR_TRAINING_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert data_dir() == tmp_path / "data" / "nostr-training"
    assert config_dir() == tmp_path / "cfg" / "nostr-training"


def test_key_file_order(tmp_path, monkeypatch):
    monkeypatch.setenv("NOSTR_TRAINING_HOME", str(tmp_path))
    monkeypatch.delenv("NOSTR_TRAINING_KEY_FILE", raising=False)
    assert resolve_key_file(None) == default_key_file(tmp_path) == tmp_path / "key.ncryptsec"
    monkeypatch.setenv("NOSTR_TRAINING_KEY_FILE", str(tmp_path / "env.ncryptsec"))
    assert resolve_key_file(None) == tmp_path / "env.ncryptsec"
    assert resolve_key_file(str(tmp_path / "flag.ncryptsec")) == tmp_path / "flag.ncryptsec"


def test_password_from_env(monkeypatch):
    monkeypatch.delenv("NOSTR_TRAINING_PASSWORD", raising=False)
    assert password_from_env() is None
    monkeypatch.setenv("NOSTR_TRAINING_PASSWORD", "")
    assert password_from_env() == ""


def test_private_dir_and_file_tighten_what_already_existed(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    (loose / "index.sqlite").write_bytes(b"data")
    (loose / "index.sqlite").chmod(0o644)
    assert make_private_dir(loose) == loose and mode(loose) == 0o700
    assert make_private_file(loose / "index.sqlite").read_bytes() == b"data"
    assert mode(loose / "index.sqlite") == 0o600
    fresh = make_private_file(make_private_dir(tmp_path / "a" / "b") / "new")
    assert mode(tmp_path / "a" / "b") == 0o700 and mode(fresh) == 0o600 and fresh.read_bytes() == b""


def test_config_toml_is_private_even_in_a_dir_made_755(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    path = write_config(load_config(home))
    assert mode(home) == 0o700 and mode(path) == 0o600
    path.chmod(0o644)
    write_config(load_config(home))
    assert mode(path) == 0o600
