"""Daemon configuration: defaults, the TOML round trip, overrides and named errors."""

from __future__ import annotations

import pytest

from nostr_training.daemon.config import DEFAULT_PORT, load_config, write_config
from nostr_training.errors import ConfigError


def test_defaults_without_a_file(home):
    config = load_config()
    assert config.relays == ()
    assert (config.host, config.port, config.log_format) == ("127.0.0.1", DEFAULT_PORT, "text")
    assert config.config_path == home / "config.toml"
    assert config.database_path.parent == home


def test_without_a_home_config_and_data_follow_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("NOSTR_TRAINING_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    config = load_config()
    assert config.config_path == tmp_path / "cfg" / "nostr-training" / "config.toml"
    assert config.database_path == tmp_path / "data" / "nostr-training" / "index.sqlite"
    both = load_config(tmp_path / "one")
    assert both.config_path.parent == both.data_dir == tmp_path / "one"


def test_round_trip(tmp_path, alice):
    course = f"31924:{alice.public_key}:rust-101"
    base = load_config(tmp_path)
    written = base.with_overrides(relays=["wss://Relay.One/", "ws://127.0.0.1:7777"], port=0, log_format="json")
    written = type(written)(**{**written.__dict__, "follow_courses": (course,), "follow_authors": (alice.public_key,)})
    write_config(written)
    again = load_config(tmp_path)
    assert again.relays == ("wss://relay.one", "ws://127.0.0.1:7777")
    assert again.port == 0 and again.log_format == "json"
    assert again.follow_courses == (course,) and again.follow_authors == (alice.public_key,)


@pytest.mark.parametrize(
    "text,needle",
    [
        ('relays = ["http://x"]', "relays"),
        ("[local]\nport = 70000", "local.port"),
        ('[follow]\ncourses = ["not-a-coordinate"]', "follow.courses"),
        ('[follow]\nauthors = ["abc"]', "follow.authors"),
        ('[log]\nformat = "xml"', "log.format"),
        ("relays = [", "config.toml"),
    ],
)
def test_bad_values_are_named(tmp_path, text, needle):
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_config(tmp_path)
