"""Settings shared by every command: data dir, key file, password, output form."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..errors import ConfigError

__all__ = ["data_dir", "config_dir", "default_key_file", "key_file_option", "data_dir_option", "json_option", "resolve_key_file", "read_password"]

APP = "nostr-training"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """--data-dir, else $NOSTR_TRAINING_HOME, else the XDG data dir."""
    if override:
        return Path(override)
    env = os.environ.get("NOSTR_TRAINING_HOME")
    if env:
        return Path(env)
    import platformdirs  # only when no override is given: keeps start-up short

    return Path(platformdirs.user_data_dir(APP))


def config_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """--data-dir or $NOSTR_TRAINING_HOME hold the config too; else the XDG config dir."""
    if override or os.environ.get("NOSTR_TRAINING_HOME"):
        return data_dir(override)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP))


def default_key_file(data: Path) -> Path:
    return data / "key.ncryptsec"


def resolve_key_file(key_file: str | None, data_override: str | None = None) -> Path:
    """--key-file, else $NOSTR_TRAINING_KEY_FILE, else the default key in the data dir."""
    if key_file:
        return Path(key_file)
    env = os.environ.get("NOSTR_TRAINING_KEY_FILE")
    if env:
        return Path(env)
    return default_key_file(data_dir(data_override))


def read_password(*, confirm: bool = False) -> str:
    """$NOSTR_TRAINING_PASSWORD, else a prompt when stdin is a terminal."""
    env = os.environ.get("NOSTR_TRAINING_PASSWORD")
    if env is not None:
        return env
    if sys.stdin.isatty():
        return click.prompt("Key password", hide_input=True, confirmation_prompt=confirm)
    raise ConfigError("no key password: set NOSTR_TRAINING_PASSWORD or run on a terminal")


key_file_option = click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="ncryptsec key file (default: $NOSTR_TRAINING_KEY_FILE, else DATA_DIR/key.ncryptsec).",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Data and config dir (default: $NOSTR_TRAINING_HOME, else the XDG dirs).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
