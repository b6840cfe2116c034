"""Where nostr-training keeps its files, and the environment settings that choose them.

Neutral ground for the CLI and the daemon alike: no click here, so the daemon can resolve its
data dir, config dir and key file without loading the CLI. The command-line options and the
interactive password prompt stay in ``cli/options.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "APP",
    "data_dir",
    "config_dir",
    "default_key_file",
    "resolve_key_file",
    "password_from_env",
    "make_private_dir",
    "make_private_file",
]

APP = "nostr-training"

_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600


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


def resolve_key_file(key_file: str | os.PathLike[str] | None, data_override: str | os.PathLike[str] | None = None) -> Path:
    """--key-file, else $NOSTR_TRAINING_KEY_FILE, else the default key in the data dir."""
    if key_file:
        return Path(key_file)
    env = os.environ.get("NOSTR_TRAINING_KEY_FILE")
    if env:
        return Path(env)
    return default_key_file(data_dir(data_override))


def password_from_env() -> str | None:
    """$NOSTR_TRAINING_PASSWORD when set (an empty value counts as set), else None."""
    return os.environ.get("NOSTR_TRAINING_PASSWORD")


def make_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) and make it 0700, also when it already existed
    with a wider mode: the dir holds the index, the config and the runtime secret."""
    target = Path(path)
    target.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
    os.chmod(target, _PRIVATE_DIR)
    return target


def make_private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty if it is absent, and make it 0600 either way, before anything
    private is written into it (the mode is set on creation, so no other user can open it)."""
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, _PRIVATE_FILE)
    try:
        os.fchmod(fd, _PRIVATE_FILE)
    finally:
        os.close(fd)
    return target


def secure_data_dir(path: str | os.PathLike[str]) -> Path:
    """Make a data dir and everything already in it private (dirs 0700, files 0600), whatever
    modes an earlier version or the user's umask left: it holds the index of the user's
    correspondence, the key and the runtime secret."""
    root = make_private_dir(path)
    for entry in root.rglob("*"):
        if entry.is_symlink():
            continue
        os.chmod(entry, _PRIVATE_DIR if entry.is_dir() else _PRIVATE_FILE)
    return root
