"""The [sfu] settings: the API secret from an environment variable or a 0600 file, never from
config.toml in the clear, and never in a repr or an error message."""

from __future__ import annotations

import importlib

import pytest

from nostr_training.daemon.config import config_path, load_config
from nostr_training.errors import ConfigError
from nostr_training.sfu.config import SecretText, load_sfu_config, parse_sfu_config
from nostr_training.sfu.livekit import LiveKitAdapter

SECRET = "the-livekit-secret-value-0123456789"
TABLE = {"url": "wss://sfu.example.org", "api_key": "APIkey1", "api_secret_env": "LK_SECRET"}


def test_absent_table_means_no_sfu():
    assert parse_sfu_config(None) is None


def test_secret_from_an_environment_variable():
    config = parse_sfu_config(TABLE, environ={"LK_SECRET": SECRET + "\n"})
    assert (config.provider, config.url, config.api_key) == ("livekit", "wss://sfu.example.org", "APIkey1")
    assert config.api_secret.reveal() == SECRET
    assert config.secret_source == "env:LK_SECRET"


def test_the_secret_never_prints():
    config = parse_sfu_config(TABLE, environ={"LK_SECRET": SECRET})
    for text in (repr(config), str(config), repr(config.api_secret), f"{config.api_secret}"):
        assert SECRET not in text
    assert SECRET not in repr(LiveKitAdapter(config))


def test_secret_text_is_not_pickled():
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(SecretText(SECRET))


def test_a_short_secret_is_refused_without_echoing_it():
    with pytest.raises(ConfigError, match="shorter than 32") as caught:
        parse_sfu_config(TABLE, environ={"LK_SECRET": "short-secret"})
    assert "short-secret" not in str(caught.value)


def test_a_missing_environment_variable_is_named():
    with pytest.raises(ConfigError, match="LK_SECRET"):
        parse_sfu_config(TABLE, environ={})


def test_secret_from_an_owner_only_file(tmp_path):
    secret_file = tmp_path / "livekit.secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    table = {k: v for k, v in TABLE.items() if k != "api_secret_env"} | {"api_secret_file": str(secret_file)}
    config = parse_sfu_config(table, environ={})
    assert config.api_secret.reveal() == SECRET


def test_a_file_others_can_read_is_refused_without_reading_it(tmp_path):
    secret_file = tmp_path / "livekit.secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o644)
    table = {k: v for k, v in TABLE.items() if k != "api_secret_env"} | {"api_secret_file": str(secret_file)}
    with pytest.raises(ConfigError, match="chmod 600") as caught:
        parse_sfu_config(table)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("name", ["api_secret", "secret", "API_SECRET"])
def test_a_secret_in_the_clear_is_refused_without_echoing_it(name):
    table = dict(TABLE) | {name: SECRET}
    with pytest.raises(ConfigError, match="must not be written in config.toml") as caught:
        parse_sfu_config(table, environ={"LK_SECRET": SECRET})
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "sfu.example.org"}, "sfu.url"),
        ({"url": ""}, "sfu.url"),
        ({"api_key": 5}, "sfu.api_key"),
        ({"provider": "jitsi"}, "sfu.provider"),
        ({"api_secret_file": "/x"}, "exactly one"),
        ({"colour": "blue"}, "unknown"),
    ],
)
def test_bad_settings_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_sfu_config(dict(TABLE) | change, environ={"LK_SECRET": SECRET})


def test_read_from_the_daemon_config_file(home, monkeypatch):
    monkeypatch.setenv("LK_SECRET", SECRET)
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        'relays = []\n[sfu]\nurl = "wss://sfu.example.org"\napi_key = "APIkey1"\napi_secret_env = "LK_SECRET"\n'
    )
    config = load_sfu_config(load_config().extra)
    assert config is not None and config.api_secret.reveal() == SECRET


@pytest.mark.parametrize("name", ["base", "config", "livekit", "webhook_http"])
def test_public_api_resolves(name):
    module = importlib.import_module(f"nostr_training.sfu.{name}")
    assert module.__all__ and not [n for n in module.__all__ if not hasattr(module, n)]
