"""Daemon settings: one TOML file in the config dir, the index in the data dir.

``--data-dir`` (or ``$NOSTR_TRAINING_HOME``) holds both, so a test or a second identity is one
directory. Command-line options override the file for one run without rewriting it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, MalformedEvent
from ..event import parse_coordinate
from ..nips.nip65 import normalize_relay_url
from ..paths import config_dir, data_dir, make_private_dir, make_private_file

__all__ = [
    "DaemonConfig",
    "DEFAULT_PORT",
    "LOG_FORMATS",
    "config_path",
    "load_config",
    "write_config",
    "normalise_relay_url",
]

DEFAULT_PORT = 4869
LOG_FORMATS = ("text", "json")
_HEX = frozenset("0123456789abcdef")


def normalise_relay_url(url: str) -> str:
    """NIP-65's one spelling per relay; a bad URL is a configuration error here."""
    try:
        return normalize_relay_url(url)
    except MalformedEvent as exc:
        raise ConfigError(f"relays: {exc}") from exc


@dataclass(frozen=True)
class DaemonConfig:
    """What the daemon connects to, follows and serves."""

    data_dir: Path
    config_path: Path
    relays: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    follow_courses: tuple[str, ...] = ()
    follow_authors: tuple[str, ...] = ()
    log_format: str = "text"
    key_file: Path | None = None
    publish_timeout: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "index.sqlite"

    @property
    def runtime_path(self) -> Path:
        return self.data_dir / "daemon.json"

    def with_overrides(
        self,
        *,
        relays: tuple[str, ...] | list[str] | None = None,
        port: int | None = None,
        host: str | None = None,
        log_format: str | None = None,
    ) -> "DaemonConfig":
        changes: dict[str, Any] = {}
        if relays:
            changes["relays"] = tuple(dict.fromkeys(normalise_relay_url(r) for r in relays))
        if port is not None:
            changes["port"] = _port(port)
        if host is not None:
            changes["host"] = host
        if log_format is not None:
            changes["log_format"] = _log_format(log_format)
        return replace(self, **changes)


def config_path(data_override: str | Path | None = None) -> Path:
    return config_dir(data_override) / "config.toml"


def _port(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= 65535:
        raise ConfigError(f"local.port must be an integer 0..65535, not {value!r}")
    return value


def _log_format(value: Any) -> str:
    if value not in LOG_FORMATS:
        raise ConfigError(f"log.format must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value


def _strings(section: str, name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{section}{name} must be a list of strings")
    return tuple(value)


def _courses(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        try:
            parse_coordinate(value)
        except MalformedEvent as exc:
            raise ConfigError(f"follow.courses: {exc}") from exc
    return values


def _authors(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if len(value) != 64 or not _HEX.issuperset(value):
            raise ConfigError(f"follow.authors: not a 64-hex pubkey: {value!r}")
    return values


def load_config(data_override: str | Path | None = None) -> DaemonConfig:
    """Read config.toml (absent means defaults); every bad value is named in the error."""
    path = config_path(data_override)
    data = data_dir(data_override)
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    local = raw.get("local", {})
    follow = raw.get("follow", {})
    log = raw.get("log", {})
    for name, section in (("local", local), ("follow", follow), ("log", log)):
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
    relays = tuple(dict.fromkeys(normalise_relay_url(r) for r in _strings("", "relays", raw.get("relays", []))))
    key_file = raw.get("key_file")
    if key_file is not None and not isinstance(key_file, str):
        raise ConfigError("key_file must be a string path")
    timeout = raw.get("publish_timeout", 10.0)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError("publish_timeout must be a positive number of seconds")
    host = local.get("host", "127.0.0.1")
    if not isinstance(host, str):
        raise ConfigError("local.host must be a string")
    known = {"relays", "local", "follow", "log", "key_file", "publish_timeout"}
    return DaemonConfig(
        data_dir=data,
        config_path=path,
        relays=relays,
        host=host,
        port=_port(local.get("port", DEFAULT_PORT)),
        follow_courses=_courses(_strings("follow.", "courses", follow.get("courses", []))),
        follow_authors=_authors(_strings("follow.", "authors", follow.get("authors", []))),
        log_format=_log_format(log.get("format", "text")),
        key_file=Path(key_file) if key_file else None,
        publish_timeout=float(timeout),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def _toml_str(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def _toml_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def write_config(config: DaemonConfig) -> Path:
    """Write ``config`` as commented TOML (the file a user then edits), private to the user:
    it names the key file and the people followed."""
    lines = [
        "# nostr-training daemon settings.",
        "# The relays you read from and write to (your NIP-65 relays).",
        f"relays = {_toml_list(config.relays)}",
        f"publish_timeout = {config.publish_timeout}",
    ]
    if config.key_file is not None:
        lines.append(f"key_file = {_toml_str(str(config.key_file))}")
    lines += [
        "",
        "# The local NIP-01 relay endpoint; keep it on loopback.",
        "[local]",
        f"host = {_toml_str(config.host)}",
        f"port = {config.port}",
        "",
        "# Courses (kind:pubkey:d coordinates) and authors (hex pubkeys) to follow.",
        "[follow]",
        f"courses = {_toml_list(config.follow_courses)}",
        f"authors = {_toml_list(config.follow_authors)}",
        "",
        "[log]",
        f"format = {_toml_str(config.log_format)}  # text or json",
        "",
    ]
    make_private_dir(config.config_path.parent)
    make_private_file(config.config_path).write_text("\n".join(lines), "utf-8")
    return config.config_path


def _set_line(lines: list[str], table: str, key: str, value: str) -> list[str]:
    """``key = value`` in ``[table]`` ("" for the top level), replacing the key's current value
    (a one-line value, or an array that spans lines) or adding it at the end of the table."""
    current = ""
    start = end = None
    insert_at = None
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("[") and stripped.endswith("]") and not stripped.startswith("[["):
            if current == table and insert_at is None:
                insert_at = i
            current = stripped[1:-1].strip()
        elif current == table and start is None and stripped.split("=", 1)[0].strip() == key and "=" in stripped:
            start = i
            depth = stripped.count("[") - stripped.count("]")
            while depth > 0 and i + 1 < len(lines):
                i += 1
                depth += lines[i].count("[") - lines[i].count("]")
            end = i
        i += 1
    line = f"{key} = {value}"
    if start is not None and end is not None:
        return lines[:start] + [line] + lines[end + 1:]
    if current == table and insert_at is None:
        insert_at = len(lines)
    if insert_at is None:
        return lines + ["", f"[{table}]", line]
    if table == "" and insert_at == len(lines):
        insert_at = next((n for n, text in enumerate(lines) if text.strip().startswith("[")), len(lines))
    return lines[:insert_at] + [line] + lines[insert_at:]


def update_config(path: Path, changes: dict[tuple[str, str], tuple[str, ...]]) -> Path:
    """Change some list settings of config.toml in place, keeping everything else as the user
    wrote it (comments, tables this version does not know, such as ``[sfu]``); written to a
    private temporary file and renamed over the old one, so a crash leaves one or the other."""
    lines = path.read_text("utf-8").splitlines() if path.exists() else []
    for (table, key), values in changes.items():
        lines = _set_line(lines, table, key, _toml_list(values))
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # what we write must read back
    make_private_dir(path.parent)
    tmp = make_private_file(path.with_name(path.name + ".tmp"))
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)
    return path
