"""Options shared by every command (data dir, key file, output form) and the password prompt.

The paths themselves are resolved in ``nostr_training.paths``, which the daemon uses too.
"""

from __future__ import annotations

import sys

import click

from ..errors import ConfigError
from ..paths import config_dir, data_dir, default_key_file, password_from_env, resolve_key_file

__all__ = [
    "data_dir",
    "config_dir",
    "default_key_file",
    "key_file_option",
    "data_dir_option",
    "json_option",
    "signer_option",
    "resolve_key_file",
    "read_password",
]


def read_password(*, confirm: bool = False) -> str:
    """$NOSTR_TRAINING_PASSWORD, else a prompt when stdin is a terminal."""
    env = password_from_env()
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
signer_option = click.option(
    "--signer",
    "signer_uri",
    default=None,
    metavar="bunker://...",
    help="Sign with this NIP-46 bunker for this run (remembered in config.toml once connected).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
