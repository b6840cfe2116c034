"""``signer connect|show`` (where your key is held) and ``profile show|set`` (your kind 0)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from ..errors import ConfigError, EncodingError
from .common import emit, load_settings, load_signer, note, relay_urls, run, signing_note, table
from .options import data_dir_option, json_option, key_file_option, read_password, signer_option

__all__ = ["register", "signer_group", "profile_group"]


# signer -------------------------------------------------------------------------------------


@click.group("signer")
def signer_group() -> None:
    """Sign with a NIP-46 remote signer (a bunker) instead of a key file on this machine.

    \b
    Example:
      nostr-training signer connect 'bunker://<pubkey>?relay=wss://relay.nsec.app&secret=...'
      nostr-training signer connect --nostrconnect wss://relay.nsec.app
      nostr-training signer show
    """


def _session(config: Any) -> tuple[Any, Any]:
    """The data dir's client session key (created on first use) and its path."""
    from ..keys import load_key_file
    from ..remote_signer import create_session_key
    from ..user_signer import session_key_path

    path = session_key_path(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return load_key_file(path, read_password()), path
    return create_session_key(path, read_password(confirm=True)), path


def _profile_out(profile: Any) -> dict[str, Any]:
    from ..nips.nip19 import npub_encode

    out = profile.to_dict()
    if profile.pubkey:
        out["npub"] = npub_encode(profile.pubkey)
    return out


def _print_nostrconnect(uri: str, as_json: bool) -> None:
    if as_json:
        emit({"nostrconnect": uri})
        return
    import sys

    click.echo("Scan or paste this in your signer app (nsec.app, Amber, ...):")
    if sys.stdout.isatty():
        from ..qr import encode, render_terminal

        click.echo(render_terminal(encode(uri)))
    click.echo(uri)


async def _pair(config: Any, relays: tuple[str, ...], timeout: float, as_json: bool) -> Any:
    from ..clock import SystemClock
    from ..daemon.app import make_pool
    from ..remote_signer import RemoteSigner, SignerProfile
    from ..signer import LocalSigner

    session, path = _session(config)
    uri = RemoteSigner.nostrconnect_uri(session, relays)
    pool = make_pool(signer=LocalSigner(session), clock=SystemClock())
    try:
        signer = await RemoteSigner.pair(
            pool, session, uri, timeout=timeout, on_listening=lambda: _print_nostrconnect(str(uri), as_json),
        )
        user = await signer.get_public_key()
        await signer.close()
    finally:
        await pool.close()
    return SignerProfile.remote(signer.connection_uri, path, pubkey=user)


@signer_group.command("connect")
@click.argument("uri", required=False)
@click.option("--nostrconnect", "nostrconnect", multiple=True, metavar="RELAY", callback=relay_urls,
              help="Pair the other way: print a nostrconnect:// URI for your signer app, listening on RELAY.")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=300.0, show_default=True,
              help="Seconds to wait for the signer app to answer a nostrconnect:// URI.")
@data_dir_option
@json_option
def signer_connect(uri: str | None, nostrconnect: tuple[str, ...], timeout: float, data_dir: str | None, as_json: bool) -> None:
    """Pair with a remote signer and keep it in config.toml's [signer] table.

    Give the bunker:// URI your signer made, or --nostrconnect RELAY to print a nostrconnect://
    URI to scan or paste in the signer app. This machine keeps only a session key (ncryptsec,
    under the usual key password); the signer is asked for the kinds this program signs and
    NIP-44 both ways.

    \b
    Example:
      nostr-training signer connect 'bunker://<pubkey>?relay=wss://relay.nsec.app&secret=...'
      nostr-training signer connect --nostrconnect wss://relay.nsec.app
    """
    from ..daemon.config import write_config
    from ..remote_signer import SignerProfile
    from ..user_signer import BunkerSigner

    if bool(uri) == bool(nostrconnect):
        raise click.UsageError("give a bunker:// URI or --nostrconnect RELAY (one of them)")
    config = load_settings(data_dir)
    if uri:
        from ..nips import nip46

        try:
            bunker = nip46.parse_bunker_uri(uri)
        except EncodingError as exc:
            raise click.BadParameter(str(exc), param_hint="URI") from None
        session, path = _session(config)
        signer = BunkerSigner(SignerProfile.remote(bunker, path), session,
                              on_auth_url=lambda url: note(f"nostr-training: approve in your signer: {url}"))
        run(signer.connect())
        profile = signer.profile
    else:
        profile = run(_pair(config, nostrconnect, timeout, as_json))
    write_config(replace(config, signer=profile))
    out = _profile_out(profile)
    if as_json:
        emit(out)
    else:
        click.echo(f"connected: signing as {out['npub']} through {', '.join(profile.bunker.relays)}")
        click.echo(f"kept in {config.config_path} (session key {profile.key_file})")


@signer_group.command("show")
@data_dir_option
@json_option
def signer_show(data_dir: str | None, as_json: bool) -> None:
    """Which signer commands and the daemon use: the [signer] table, else the key file.

    \b
    Example:
      nostr-training signer show --json
    """
    from ..paths import resolve_key_file

    config = load_settings(data_dir)
    if config.signer is not None:
        out = _profile_out(config.signer)
    else:
        path = config.key_file or resolve_key_file(None, str(config.data_dir))
        out = {"kind": "local", "key_file": str(path), "exists": path.exists()}
    if as_json:
        emit(out)
    else:
        table([(k, v) for k, v in out.items()], ("SIGNER", ""))


# profile ------------------------------------------------------------------------------------


@click.group("profile")
def profile_group() -> None:
    """Your Nostr profile (kind 0): the name DM clients and calendars show for you.

    \b
    Example:
      nostr-training profile set --name "Ada (instructor)" --nip05 ada@school.example
      nostr-training profile show
    """


def _print_profile(body: dict[str, Any]) -> None:
    profile = body.get("profile")
    if profile is None:
        click.echo(f"no profile found for {body.get('pubkey')}")
        return
    rows = [(k, profile[k]) for k in ("name", "display_name", "picture", "about", "nip05") if k in profile]
    rows += [(k, v) for k, v in (profile.get("extra") or {}).items()]
    table(rows, ("FIELD", "VALUE"))


async def _show_offline(config: Any, pubkey: str, relays: tuple[str, ...]) -> dict[str, Any]:
    from ..services.context import offline_context
    from ..services.identity import profile_dict, read_profile

    async with offline_context(config, None) as ctx:
        return {"pubkey": pubkey, "profile": profile_dict(await read_profile(ctx, pubkey, relays=relays))}


@profile_group.command("show")
@click.option("--pubkey", default=None, help="Whose profile (npub or hex; default: yours).")
@click.option("--relay", "relays", multiple=True, metavar="URL", callback=relay_urls, help="Look on these relays too.")
@data_dir_option
@key_file_option
@signer_option
@json_option
def profile_show(pubkey: str | None, relays: tuple[str, ...], data_dir: str | None, key_file: str | None,
                 signer_uri: str | None, as_json: bool) -> int:
    """Show a profile: the newest kind 0 in the index or on your relays. Exits 1 when none.

    \b
    Example:
      nostr-training profile show --json
    """
    from ..nips.nip19 import pubkey_from_text
    from .client import running_daemon

    config = load_settings(data_dir)
    if pubkey:
        pubkey = pubkey_from_text(pubkey)
    elif config.signer is not None and config.signer.pubkey and not (key_file or signer_uri):
        pubkey = config.signer.pubkey
    client = running_daemon(config.data_dir)
    if client is not None and not relays:
        body = client.call("POST", "/profile/show", {"pubkey": pubkey} if pubkey else {})
    else:
        if pubkey is None:
            signer = load_signer(key_file, config, required=True, signer_uri=signer_uri)
            pubkey = run(signer.get_public_key())
        body = run(_show_offline(config, pubkey, relays))
    if as_json:
        emit(body)
    else:
        _print_profile(body)
    return 0 if body.get("profile") else 1


async def _set_offline(config: Any, signer: Any, fields: dict[str, str], wait: float) -> dict[str, Any]:
    from ..services.context import offline_context
    from ..services.identity import set_profile

    async with offline_context(config, signer) as ctx:
        return (await set_profile(ctx, fields, wait=wait)).to_dict()


@profile_group.command("set")
@click.option("--name", default=None, help="Short name.")
@click.option("--display-name", default=None, help="Longer name to show.")
@click.option("--picture", default=None, help="https:// URL of your picture.")
@click.option("--about", default=None, help="A few words about you.")
@click.option("--nip05", default=None, help="name@domain.tld verified by your domain.")
@click.option("--timeout", type=click.FloatRange(0, 300), default=10.0, show_default=True)
@data_dir_option
@key_file_option
@signer_option
@json_option
def profile_set(name: str | None, display_name: str | None, picture: str | None, about: str | None, nip05: str | None,
                timeout: float, data_dir: str | None, key_file: str | None, signer_uri: str | None, as_json: bool) -> int:
    """Publish your profile with the fields given (others, and other clients' fields, are kept).

    An empty value clears a field. Signs with your key (a key file or your bunker). Exits 1
    when the profile reached no relay yet (it stays queued for the daemon).

    \b
    Example:
      nostr-training profile set --name "Ada" --about "Teaches Nostr on Tuesdays"
    """
    from .client import running_daemon

    fields = {k: v for k, v in (("name", name), ("display_name", display_name), ("picture", picture),
                                 ("about", about), ("nip05", nip05)) if v is not None}
    if not fields:
        raise click.UsageError("name at least one field: --name, --display-name, --picture, --about, --nip05")
    config = load_settings(data_dir)
    client = running_daemon(config.data_dir)
    if client is not None and not (key_file or signer_uri):
        note("nostr-training: signing with the daemon's signer")
        body = client.call("POST", "/profile", {"fields": fields, "wait": timeout}, timeout=timeout + 60)
    else:
        signer = load_signer(key_file, config, required=True, signer_uri=signer_uri)
        if signer is None:
            raise ConfigError("no key to sign with")
        signing_note(signer, run(signer.get_public_key()))
        body = run(_set_offline(config, signer, fields, timeout))
    if as_json:
        emit(body)
    else:
        _print_profile(body)
        result = body["result"]
        where = ", ".join(d["target"] for d in result.get("deliveries", []) if d["state"] == "delivered") or "nowhere yet"
        click.echo(f"{result['id'][:16]}  delivered to {where}")
    return 0 if body["result"].get("delivered") else 1


def register(cli: click.Group) -> None:
    cli.add_command(signer_group)
    cli.add_command(profile_group)
