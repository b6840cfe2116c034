"""The ``[sfu]`` table of config.toml: which SFU, its URL and API key, and where its secret is.

The API secret mints tokens for any room, so it never sits in config.toml in the clear (the
file is shared, copied and pasted into bug reports). It comes from an environment variable
named by ``api_secret_env`` or from a file readable by its owner alone (``api_secret_file``,
mode 0600 or stricter), and it is never in a repr, an error message or a log line.

    [sfu]
    provider = "livekit"
    url = "wss://sfu.example.org"
    api_key = "APIxxxx"
    api_secret_env = "LIVEKIT_API_SECRET"     # or: api_secret_file = "~/.config/livekit.secret"

A config without ``[sfu]`` is a room without an SFU: scheduling, keys and presence-based
attendance still work.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["MIN_SECRET_LENGTH", "PROVIDERS", "SecretText", "SfuConfig", "load_sfu_config", "parse_sfu_config"]

PROVIDERS = ("livekit",)
MIN_SECRET_LENGTH = 32
_KNOWN = {"provider", "url", "api_key", "api_secret_env", "api_secret_file"}
_CLEAR = {"api_secret", "secret", "apisecret"}


class SecretText:
    """A string that does not print: ``reveal()`` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretText('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretText) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("SecretText", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("a SecretText is not pickled")


@dataclass(frozen=True)
class SfuConfig:
    provider: str
    url: str
    api_key: str
    api_secret: SecretText = field(repr=False)
    secret_source: str = ""
    """Where the secret came from (``env:NAME`` or ``file:PATH``), for messages; never the secret."""


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"sfu.{name} must be a non-empty string")
    return value.strip()


def _secret_from_file(path_text: str) -> SecretText:
    path = Path(path_text).expanduser()
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"sfu.api_secret_file: cannot read {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"sfu.api_secret_file: {path} is not a regular file")
    if info.st_mode & 0o077:
        raise ConfigError(
            f"sfu.api_secret_file: {path} is readable by others (mode {stat.S_IMODE(info.st_mode):o}); "
            "chmod 600 it"
        )
    try:
        text = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sfu.api_secret_file: cannot read {path}") from exc
    if not text:
        raise ConfigError(f"sfu.api_secret_file: {path} is empty")
    return SecretText(text)


def parse_sfu_config(table: Any, *, environ: Mapping[str, str] | None = None) -> SfuConfig | None:
    """The ``[sfu]`` table (``None`` when absent), with its secret read; every problem is named."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError("[sfu] must be a table")
    clear = _CLEAR & {key.lower() for key in table}
    if clear:
        raise ConfigError(
            "sfu: the API secret must not be written in config.toml; "
            "set api_secret_env to an environment variable's name or api_secret_file to a 0600 file"
        )
    unknown = sorted(set(table) - _KNOWN)
    if unknown:
        raise ConfigError(f"sfu: unknown setting(s) {', '.join(unknown)}")
    provider = _string("provider", table.get("provider", "livekit"))
    if provider not in PROVIDERS:
        raise ConfigError(f"sfu.provider must be one of {', '.join(PROVIDERS)}, not {provider!r}")
    url = _string("url", table.get("url"))
    if not url.startswith(("wss://", "ws://", "https://", "http://")):
        raise ConfigError(f"sfu.url must be a ws(s):// or http(s):// URL, not {url[:80]!r}")
    api_key = _string("api_key", table.get("api_key"))
    env_name, file_name = table.get("api_secret_env"), table.get("api_secret_file")
    if (env_name is None) == (file_name is None):
        raise ConfigError("sfu: set exactly one of api_secret_env and api_secret_file")
    if env_name is not None:
        env_name = _string("api_secret_env", env_name)
        value = (os.environ if environ is None else environ).get(env_name, "").strip()
        if not value:
            raise ConfigError(f"sfu.api_secret_env: the environment variable {env_name} is not set")
        secret, source = SecretText(value), f"env:{env_name}"
    else:
        file_name = _string("api_secret_file", file_name)
        secret, source = _secret_from_file(file_name), f"file:{file_name}"
    if len(secret.reveal()) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"sfu: the API secret from {source} is shorter than {MIN_SECRET_LENGTH} characters "
            "(LiveKit refuses such secrets; HS256 needs at least 32 bytes)"
        )
    return SfuConfig(provider, url, api_key, secret, source)


def load_sfu_config(extra: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> SfuConfig | None:
    """The SFU settings from a ``DaemonConfig.extra`` (the tables the daemon itself does not read)."""
    return parse_sfu_config(extra.get("sfu"), environ=environ)
