"""Toolbox commands: keys, event sign/verify, nip19, wrap/unwrap, dm.

Each reads JSON on stdin (one object per line, or pretty-printed objects one after another)
and writes one compact JSON object per line on stdout. They are thin: the work happens in
``keys``, ``event``, ``nips.nip19``, ``nips.nip59`` and ``nips.nip17``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import click

from ..errors import ConfigError, EncodingError, MalformedEvent, NostrTrainingError, NotFound
from ..event import Event, EventTemplate, verify_event
from .common import relay_urls
from .options import data_dir_option, key_file_option, read_password, resolve_key_file, signer_option

if TYPE_CHECKING:
    from ..keys import Keys
    from ..nips import nip19 as nip19_types

# Keys, NIP-17/19/49/59, the kinds and asyncio are imported inside the commands that use them:
# ``event verify`` and ``--help`` start without them (benchmarks/cli_startup.py).

__all__ = ["register"]

_decoder = json.JSONDecoder()


# Plumbing ---------------------------------------------------------------------------------


def _emit(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))


def _read_stdin() -> str:
    stream = sys.stdin
    raw = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedEvent(f"stdin is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return raw


def _json_objects(text: str) -> Iterator[Any]:
    """Every JSON value on stdin, in order: JSON lines or concatenated pretty-printed objects."""
    pos, end = 0, len(text)
    count = 0
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            break
        try:
            value, pos = _decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise MalformedEvent(f"stdin: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        except (ValueError, RecursionError) as exc:  # a 5000-digit number, nesting too deep
            raise MalformedEvent(f"stdin: JSON the reader refuses ({exc.__class__.__name__}: {str(exc)[:80]})") from None
        count += 1
        yield value
    if count == 0:
        raise MalformedEvent("stdin: expected a JSON object, got nothing")


def stdin_objects() -> Iterator[Any]:
    return _json_objects(_read_stdin())


def _now() -> int:
    from ..clock import SystemClock

    return SystemClock().now()


def _key_path(key_file: str | None, data_dir: str | None) -> Path:
    return resolve_key_file(key_file, data_dir)


def _load_keys(key_file: str | None, data_dir: str | None) -> Keys:
    path = _key_path(key_file, data_dir)
    if not path.exists():
        raise ConfigError(f"no key file at {path}; create one with `nostr-training keys generate`")
    from ..keys import load_key_file

    return load_key_file(path, read_password())


def _signer(key_file: str | None, data_dir: str | None, signer_uri: str | None, *, via_daemon: bool = False) -> Any:
    """The user's signer: a bunker (--signer, or config.toml's [signer]) or the key file; with
    ``via_daemon`` and neither named, the running daemon signs (no second key unlock)."""
    from .common import load_settings, load_signer

    config = load_settings(data_dir)
    if signer_uri or (key_file is None and config.signer is not None):
        return load_signer(key_file, config, required=True, signer_uri=signer_uri)
    if via_daemon and key_file is None and not os.environ.get("NOSTR_TRAINING_KEY_FILE"):
        from .client import daemon_signer

        signer = daemon_signer(config.data_dir)
        if signer is not None:
            return signer
    from ..signer import LocalSigner

    return LocalSigner(_load_keys(key_file, data_dir))


class PubkeyParam(click.ParamType):
    """An npub, nprofile or 64-hex pubkey, converted to hex."""

    name = "NPUB_OR_HEX"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            from ..nips import nip19

            return nip19.pubkey_from_text(value)
        except EncodingError as exc:
            self.fail(str(exc), param, ctx)


PUBKEY = PubkeyParam()


def _run(coro: Any) -> Any:
    from .common import run

    return run(coro)


# keys -------------------------------------------------------------------------------------


@click.group("keys")
def keys_group() -> None:
    """Create, import, show and export your key (kept encrypted as a NIP-49 ncryptsec).

    \b
    Example:
      NOSTR_TRAINING_PASSWORD=... nostr-training keys generate
      nostr-training keys show
    """


_log_n_option = click.option(
    "--log-n",
    type=click.IntRange(1, 22),
    default=16,
    show_default=True,
    help="scrypt cost of the key file encryption (2**N; 16 needs about 64 MiB).",
)


def _profile(keys: Keys) -> dict[str, str]:
    return {"pubkey": keys.public_key, "npub": keys.npub}


@keys_group.command("generate")
@key_file_option
@data_dir_option
@_log_n_option
@click.option("--force", is_flag=True, help="Overwrite an existing key file (the old key is lost).")
def keys_generate(key_file: str | None, data_dir: str | None, log_n: int, force: bool) -> None:
    """Create a new key and save it encrypted; prints {"pubkey","npub"}.

    Refuses to replace an existing key file unless --force is given.

    \b
    Example:
      NOSTR_TRAINING_PASSWORD=s3cret nostr-training keys generate --key-file host.ncryptsec
    """
    from ..keys import Keys, save_key_file

    path = _key_path(key_file, data_dir)
    if path.exists() and not force:
        raise click.ClickException(f"key file {path} already exists; use --force to replace it")
    keys = Keys.generate()
    save_key_file(path, keys, read_password(confirm=True), log_n=log_n, overwrite=force)
    _emit(_profile(keys))
    click.echo(
        "next: publish where people can reach you: nostr-training relays set wss://<relay> ..."
        " (your relay list and DM inbox; without them nobody can send you a DM or a room key)",
        err=True,
    )


@keys_group.command("import")
@key_file_option
@data_dir_option
@_log_n_option
@click.option("--force", is_flag=True, help="Overwrite an existing key file (the old key is lost).")
@click.option("--relay", "relays", multiple=True, metavar="URL", callback=relay_urls,
              help="Look here for the key's profile (0), relay list (10002) and DM inbox (10050).")
@click.option("--reuse/--no-reuse", default=None,
              help="Use the relays found in config.toml (default: ask on a terminal, else no).")
def keys_import(key_file: str | None, data_dir: str | None, log_n: int, force: bool, relays: tuple[str, ...],
                reuse: bool | None) -> None:
    """Save a secret key read from stdin (nsec, 64 hex, or an ncryptsec under the same password).

    With --relay, fetches what the key already publishes (profile, relay list, DM inbox) and
    prints it under "found"; with --reuse (or yes at the prompt) its relays go to config.toml,
    so you need not run 'relays set' again.

    \b
    Example:
      echo nsec1... | nostr-training keys import --key-file me.ncryptsec
      nostr-training keys import --relay wss://relay.damus.io --relay wss://nos.lol --reuse < nsec.txt
    """
    from ..keys import Keys, save_key_file

    path = _key_path(key_file, data_dir)
    if path.exists() and not force:
        raise click.ClickException(f"key file {path} already exists; use --force to replace it")
    interactive = sys.stdin.isatty()
    if interactive:
        text = click.prompt("Secret key (nsec or 64 hex)", hide_input=True).strip()
    else:
        text = _read_stdin().strip()
    if not text:
        raise click.ClickException("stdin: expected an nsec or 64-hex secret key, got nothing")
    if text.startswith("ncryptsec1"):
        password = read_password()
        keys = Keys.from_ncryptsec(text, password)
    else:
        keys = Keys.parse(text)
        password = read_password(confirm=True)
    save_key_file(path, keys, password, log_n=log_n, overwrite=force)
    out: dict[str, Any] = _profile(keys)
    if relays:
        out.update(_reuse_identity(data_dir, keys.public_key, relays, reuse, interactive))
    _emit(out)


def _reuse_identity(data_dir: str | None, pubkey: str, relays: tuple[str, ...], reuse: bool | None,
                    interactive: bool) -> dict[str, Any]:
    """Fetch what ``pubkey`` publishes; write its relays to config.toml when the user agrees."""
    from dataclasses import replace

    from ..daemon.config import write_config
    from ..services.context import offline_context
    from ..services.identity import existing_identity_dict, find_identity
    from .common import load_settings, note

    config = load_settings(data_dir)

    async def look() -> Any:
        async with offline_context(config, None) as ctx:
            return await find_identity(ctx, pubkey, relays)

    found = _run(look())
    body = existing_identity_dict(found)
    listed = found.relay_list
    relays_found = tuple(dict.fromkeys([*listed.write, *listed.read])) if listed is not None else ()
    if found.profile is not None:
        note(f"nostr-training: found your profile: {found.profile.name or found.profile.display_name or '(no name)'}")
    if relays_found:
        note(f"nostr-training: found your relays: {' '.join(relays_found)}")
        if reuse is None and interactive:
            reuse = click.confirm("Use these relays in config.toml?", default=True, err=True)
    reused = bool(reuse) and bool(relays_found)
    if reused:
        write_config(replace(config, relays=relays_found))
        note(f"nostr-training: relays written to {config.config_path}")
    elif not relays_found:
        note("nostr-training: no relay list found; publish one with 'nostr-training relays set URL...'")
    return {"found": body, "reused": reused}


@keys_group.command("show")
@key_file_option
@data_dir_option
@signer_option
def keys_show(key_file: str | None, data_dir: str | None, signer_uri: str | None) -> None:
    """Print the public key of your key file as {"pubkey","npub"}.

    \b
    Example:
      nostr-training keys show --key-file host.ncryptsec
    """
    from ..nips import nip19

    pubkey = _run(_signer(key_file, data_dir, signer_uri).get_public_key())
    _emit({"pubkey": pubkey, "npub": nip19.npub_encode(pubkey)})


@keys_group.command("export")
@key_file_option
@data_dir_option
@click.option("--nsec", "as_nsec", is_flag=True, help="Print the UNENCRYPTED secret key as an nsec instead.")
def keys_export(key_file: str | None, data_dir: str | None, as_nsec: bool) -> None:
    """Print the key as {"ncryptsec": ...} (still password-protected) for another client.

    With --nsec, prints {"nsec": ...}: anyone who sees it owns your identity.

    \b
    Example:
      nostr-training keys export
      nostr-training keys export --nsec   # plain secret; prints a warning on stderr
    """
    keys = _load_keys(key_file, data_dir)
    if as_nsec:
        click.echo("nostr-training: warning: printing your UNENCRYPTED secret key; keep it off screens and logs", err=True)
        _emit({"nsec": keys.nsec})
        return
    from ..nips import nip49

    text = _key_path(key_file, data_dir).read_text(encoding="ascii").strip()
    nip49.parameters(text)
    _emit({"ncryptsec": text})


# event ------------------------------------------------------------------------------------


@click.group("event")
def event_group() -> None:
    """Sign event templates and verify events (JSON on stdin, one per line).

    \b
    Example:
      echo '{"kind":1,"tags":[],"content":"hi"}' | nostr-training event sign | nostr-training event verify
    """


def _unknown_lessons(templates: list[EventTemplate], data_dir: str | None) -> list[str]:
    """The lessons our RSVP templates answer that the index does not know (the running
    daemon's, else the data dir's own)."""
    from ..kinds import LESSON, RSVP

    wanted = sorted({tag[1] for template in templates if template.kind == RSVP for tag in template.tags
                     if len(tag) > 1 and tag[0] == "a" and tag[1].startswith(f"{LESSON}:")})
    if not wanted:
        return []
    from .client import running_daemon
    from .common import load_settings, run

    config = load_settings(data_dir)
    client = running_daemon(config.data_dir)
    if client is not None:
        known = set()
        for coordinate in wanted:
            _, author, d = coordinate.split(":", 2)
            found = client.call("POST", "/req", {"filters": [{"kinds": [LESSON], "authors": [author], "#d": [d]}]})
            if found["events"]:
                known.add(coordinate)
        return [c for c in wanted if c not in known]
    if not config.database_path.exists():
        return wanted

    async def look() -> list[str]:
        from ..services.context import offline_context

        async with offline_context(config, None, connect=False) as ctx:
            return [c for c in wanted if await ctx.store.lesson(c) is None]

    return run(look())


@event_group.command("sign")
@key_file_option
@data_dir_option
@click.option("--allow-unknown-lesson", is_flag=True, help="Sign an RSVP to a lesson your index does not know.")
@signer_option
def event_sign(key_file: str | None, data_dir: str | None, allow_unknown_lesson: bool, signer_uri: str | None) -> None:
    """Sign templates {kind, tags, content, created_at?} read from stdin; created_at defaults to now.

    Refuses kinds that must stay unsigned rumors (DMs, room keys, seals): use wrap or dm. Our
    training kinds (lessons, RSVPs, rooms, attendance, certificates) must pass their strict
    parsers first: nothing is signed when one of the templates would be misread.

    \b
    Example:
      echo '{"kind":1,"tags":[["t","nostr"]],"content":"hello"}' | nostr-training event sign
    """
    from ..kinds import PRIVATE_KINDS

    templates = [EventTemplate.from_dict(obj, default_created_at=_now()) for obj in stdin_objects()]
    for template in templates:
        if template.kind in PRIVATE_KINDS:
            raise MalformedEvent(f"kind {template.kind} is never signed on its own: gift-wrap it with wrap or dm", field="kind")
    from ..services.validate import check_template

    signer = _signer(key_file, data_dir, signer_uri, via_daemon=True)

    import asyncio

    async def sign_all() -> list[Event]:
        pubkey = await signer.get_public_key()
        for template in templates:
            check_template(template, pubkey)
        if not allow_unknown_lesson:
            unknown = await asyncio.to_thread(_unknown_lessons, templates, data_dir)
            if unknown:
                raise NotFound(
                    f"no lesson {unknown[0]} in your index: an RSVP to it would answer nothing"
                    " (follow its course with 'nostr-training follow add', or pass --allow-unknown-lesson)"
                )
        return [await signer.sign_event(template) for template in templates]

    for event in _run(sign_all()):
        click.echo(event.to_json())


@event_group.command("verify")
@click.pass_context
def event_verify(ctx: click.Context) -> None:
    """Check events read from stdin: prints {"id","valid":true} per good event.

    Exits 1 with one line per bad event on stderr if any is malformed or not authentic.

    \b
    Example:
      nostr-training event verify < event.json
    """
    bad = 0
    for number, obj in enumerate(stdin_objects(), start=1):
        try:
            event = verify_event(Event.from_dict(obj))
        except NostrTrainingError as exc:
            bad += 1
            click.echo(f"nostr-training: event #{number}: {exc}", err=True)
            continue
        _emit({"id": event.id, "valid": True})
    if bad:
        ctx.exit(1)


# nip19 ------------------------------------------------------------------------------------


@click.group("nip19")
def nip19_group() -> None:
    """Encode and decode NIP-19 bech32 entities (npub, nsec, note, nprofile, nevent, naddr).

    \b
    Example:
      nostr-training nip19 decode npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6
    """


_ENCODE_ARITY = {
    "npub": ("PUBKEY",),
    "nsec": ("SECRET_HEX",),
    "note": ("EVENT_ID",),
    "nprofile": ("PUBKEY",),
    "nevent": ("EVENT_ID", "[AUTHOR]", "[KIND]"),
    "naddr": ("KIND", "PUBKEY", "IDENTIFIER"),
}


@nip19_group.command("encode")
@click.argument("entity", type=click.Choice(list(_ENCODE_ARITY)))
@click.argument("values", nargs=-1, required=True)
@click.option("--relay", "relays", multiple=True, help="Relay hint (nprofile, nevent, naddr); repeatable.")
def nip19_encode(entity: str, values: tuple[str, ...], relays: tuple[str, ...]) -> None:
    """Encode hex values as ENTITY; prints {"bech32": ...}.

    \b
    Values per entity:
      npub PUBKEY | nsec SECRET_HEX | note EVENT_ID | nprofile PUBKEY
      nevent EVENT_ID [AUTHOR] [KIND] | naddr KIND PUBKEY IDENTIFIER
    \b
    Example:
      nostr-training nip19 encode naddr 31923 <pubkey-hex> lesson-1 --relay wss://relay.example
    """
    from ..nips import nip19

    shape = _ENCODE_ARITY[entity]
    required = sum(1 for part in shape if not part.startswith("["))
    if not required <= len(values) <= len(shape):
        raise click.UsageError(f"{entity} takes {' '.join(shape)}, got {len(values)} value(s)")
    if relays and entity in ("npub", "nsec", "note"):
        raise click.UsageError(f"{entity} carries no relay hints; use nprofile, nevent or naddr")
    if entity == "nprofile":
        text = nip19.nprofile_encode(values[0], relays)
    elif entity == "nevent":
        author = values[1] if len(values) > 1 and values[1] else None
        kind = _int_value(values[2], "KIND") if len(values) > 2 else None
        text = nip19.nevent_encode(values[0], relays, author, kind)
    elif entity == "naddr":
        text = nip19.naddr_encode(_int_value(values[0], "KIND"), values[1], values[2], relays)
    else:
        text = nip19.encode(entity, values[0])
    _emit({"bech32": text})


def _int_value(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"{name} must be an integer, got {text!r}") from None


def _decoded_json(decoded: nip19_types.Decoded) -> dict[str, Any]:
    from ..nips import nip19, nip49

    data = decoded.data
    out: dict[str, Any] = {"type": decoded.hrp}
    if decoded.hrp == "npub":
        out["pubkey"] = data
    elif decoded.hrp == "nsec":
        out["secret_key"] = data.hex()
    elif decoded.hrp == "note":
        out["id"] = data
    elif decoded.hrp == "nprofile":
        out.update(pubkey=data.pubkey, relays=list(data.relays))
    elif decoded.hrp == "nevent":
        out.update(id=data.id, relays=list(data.relays), author=data.author, kind=data.kind)
    elif decoded.hrp == "naddr":
        out.update(kind=data.kind, pubkey=data.pubkey, identifier=data.identifier, relays=list(data.relays))
    elif decoded.hrp == "ncryptsec":
        params = nip49.parameters(nip19.ncryptsec_encode(data))
        out.update(log_n=params.log_n, key_security=params.key_security)
    return out


@nip19_group.command("decode")
@click.argument("text")
def nip19_decode(text: str) -> None:
    """Decode a bech32 entity (a nostr: prefix is fine) into JSON with hex values.

    \b
    Example:
      nostr-training nip19 decode nostr:nprofile1qqs...
    """
    from ..nips import nip19

    _emit(_decoded_json(nip19.decode(text)))


# gift wraps and DMs -----------------------------------------------------------------------


@click.command("wrap")
@click.option("--to", "recipients", type=PUBKEY, multiple=True, required=True, help="Recipient npub or hex; repeatable.")
@click.option("--expiration", type=click.IntRange(min=0), default=None, help="Unix time after which relays drop the wrap.")
@click.option("--ephemeral", is_flag=True, help="Kind 21059 (relays forward, never store) instead of 1059.")
@click.option("--relay-hint", default=None, help="Relay URL put in the wrap's p tag.")
@key_file_option
@data_dir_option
@signer_option
def wrap_command(
    recipients: tuple[str, ...],
    expiration: int | None,
    ephemeral: bool,
    relay_hint: str | None,
    key_file: str | None,
    data_dir: str | None,
    signer_uri: str | None,
) -> None:
    """Gift-wrap (NIP-59) rumor templates from stdin to each --to; prints one wrap per line.

    The rumor is signed by nobody; the seal inside is signed by your key.

    \b
    Example:
      echo '{"kind":14,"tags":[],"content":"hi"}' | nostr-training wrap --to npub1... > wrap.json
    """
    from ..nips import nip59

    templates = [EventTemplate.from_dict(obj, default_created_at=_now()) for obj in stdin_objects()]
    signer = _signer(key_file, data_dir, signer_uri)
    hints = {r: relay_hint for r in recipients} if relay_hint else None

    async def wrap_all() -> list[Event]:
        out: list[Event] = []
        for template in templates:
            out += await nip59.gift_wrap_many(
                template, signer, recipients, now=_now(), expiration=expiration, ephemeral=ephemeral, relay_hints=hints
            )
        return out

    for wrap in _run(wrap_all()):
        click.echo(wrap.to_json())


@click.command("unwrap")
@key_file_option
@data_dir_option
@signer_option
def unwrap_command(key_file: str | None, data_dir: str | None, signer_uri: str | None) -> None:
    """Open gift wraps from stdin addressed to you; prints each rumor (its pubkey is the verified author).

    \b
    Example:
      nostr-training unwrap < wrap.json
    """
    from ..nips import nip59

    wraps = [Event.from_dict(obj) for obj in stdin_objects()]
    signer = _signer(key_file, data_dir, signer_uri)

    async def unwrap_all() -> list[nip59.Unwrapped]:
        return [await nip59.unwrap(wrap, signer) for wrap in wraps]

    for opened in _run(unwrap_all()):
        click.echo(opened.rumor.to_json())


@click.command("dm")
@click.option("--to", "recipients", type=PUBKEY, multiple=True, required=True, help="Receiver npub or hex; repeatable.")
@click.option("--subject", default=None, help="Conversation subject tag.")
@click.option("--reply-to", default=None, help="Id of the message this answers (e tag).")
@click.option("--expiration", type=click.IntRange(min=0), default=None, help="Unix time after which relays drop the wraps.")
@key_file_option
@data_dir_option
@signer_option
@click.argument("text")
def dm_command(
    recipients: tuple[str, ...],
    subject: str | None,
    reply_to: str | None,
    expiration: int | None,
    key_file: str | None,
    data_dir: str | None,
    signer_uri: str | None,
    text: str,
) -> None:
    """Make a NIP-17 DM: prints one gift wrap per receiver, then one for you.

    \b
    Example:
      nostr-training dm --to npub1... "The lesson starts in one hour"
    """
    from ..nips import nip17

    signer = _signer(key_file, data_dir, signer_uri)
    wraps = _run(
        nip17.dm_wraps(signer, recipients, text, _now(), subject=subject, reply_to=reply_to, expiration=expiration)
    )
    for wrap in wraps:
        click.echo(wrap.to_json())


def register(cli: click.Group) -> None:
    """Add this module's commands to the top-level group."""
    for command in (keys_group, event_group, nip19_group, wrap_command, unwrap_command, dm_command):
        cli.add_command(command)
