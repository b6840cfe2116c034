"""``recording publish|progress|status``: a lesson's recording on Blossom and NIP-94, and
completing a lesson by watching it."""

from __future__ import annotations

import sys
from typing import Any

import click

from .common import emit, load_settings, load_signer, note, run, table
from .options import data_dir_option, json_option, key_file_option

__all__ = ["register", "recording"]


@click.group("recording")
def recording() -> None:
    """A lesson's recording: publish it (host), record what you watched and see your progress.

    \b
    Example:
      nostr-training recording publish 31923:<host>:lesson-1 session.webm --server https://blossom.example
      nostr-training recording progress 31923:<host>:lesson-1 0 1800
      nostr-training recording status 31923:<host>:lesson-1
    """


class _Bar:
    """A progress bar on a terminal, a line every tenth otherwise (logs stay readable)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._bar: Any = None
        self._done = 0
        self._tenth = -1

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            if self._bar is None:
                self._bar = click.progressbar(length=max(total, 1), label="uploading", file=sys.stderr)
                self._bar.__enter__()
            self._bar.update(done - self._done)
            self._done = done
            return
        tenth = 10 * done // total if total else 10
        if tenth != self._tenth:
            self._tenth = tenth
            note(f"nostr-training: uploaded {done} of {total} bytes ({10 * tenth} %)")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


async def _offline_publish(config: Any, signer: Any, lesson: str, source: str, options: dict[str, Any], wait: float) -> Any:
    from ..services.context import offline_context
    from ..services.publish import _deliver_now
    from ..services.recordings import publish_recording

    bar = _Bar()
    try:
        async with offline_context(config, signer) as ctx:
            result = await publish_recording(ctx, lesson, source, progress=bar, **options)
            await _deliver_now(ctx, result.event_ids, wait)
            return result.to_dict()
    finally:
        bar.close()


@recording.command("publish")
@click.argument("lesson")
@click.argument("source", metavar="FILE|URL")
@click.option("--server", default=None, help="Blossom server to upload to (default: the first of your 10063 list).")
@click.option("--mime", default=None, help="MIME type of the file (default: guessed from its name).")
@click.option("--duration", type=click.IntRange(1), default=None, help="Length in seconds (default: the lesson's).")
@click.option("--caption", default="", help="A caption for the 1063.")
@click.option("--timeout", type=click.FloatRange(0, 300), default=10.0, show_default=True)
@data_dir_option
@key_file_option
@json_option
def recording_publish(lesson: str, source: str, server: str | None, mime: str | None, duration: int | None, caption: str,
                      timeout: float, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Publish a lesson's recording: upload FILE to Blossom (or take a Blossom URL), publish the
    NIP-94 1063 and set the lesson's and meeting's recording tag. Signs with your key (the host's).

    For an end-to-end encrypted lesson the file is encrypted before upload and its key sent to
    each admitted participant. Uploads resume: a rerun sends nothing the server already holds.

    \b
    Example:
      nostr-training recording publish 31923:<host>:lesson-1 session.webm --server https://blossom.example
    """
    from pathlib import Path

    from .client import running_daemon

    config = load_settings(data_dir)
    if not source.startswith(("https://", "http://")):
        source = str(Path(source).expanduser().resolve())
    options = {"server": server, "mime": mime, "duration": duration, "caption": caption}
    client = running_daemon(config.data_dir)
    if client is not None:
        note("nostr-training: the daemon signs with its key and uploads the file (no progress shown here)")
        result = client.call("POST", "/recording/publish", {"lesson": lesson, "source": source, **options}, timeout=24 * 3600)
    else:
        signer = load_signer(key_file, config, required=True)
        note(f"nostr-training: signing with {run(signer.get_public_key())[:16]}...; no daemon running: sending directly")
        result = run(_offline_publish(config, signer, lesson, source, options, timeout))
    for text in result.get("notes", []):
        note(f"nostr-training: {text}")
    if as_json:
        emit(result)
        return
    table(
        [("recording", result["recording_id"]), ("url", result["url"]), ("size", result["size"]),
         ("encrypted", "yes" if result["encrypted"] else "no"), ("lesson revision", result.get("lesson_revision")),
         ("keys sent to", len(result.get("keys_sent_to", [])))],
        ("", ""),
    )


def _call(data_dir: str | None, key_file: str | None, path: str, body: dict[str, Any]) -> dict[str, Any]:
    from .client import running_daemon

    config = load_settings(data_dir)
    client = running_daemon(config.data_dir)
    if client is not None:
        return client.call("GET" if path == "/recording/status" else "POST", path, body)
    signer = load_signer(key_file, config, required=True)
    return run(_offline(config, signer, path, body))


async def _offline(config: Any, signer: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    from ..services.context import offline_context
    from ..services.publish import _deliver_now
    from ..services.recordings import record_progress, recording_status
    from ..store.base import OutboxState

    async with offline_context(config, signer) as ctx:
        if path == "/recording/status":
            return (await recording_status(ctx, body["lesson"])).to_dict()
        result = await record_progress(ctx, body["lesson"], body["from"], body["to"])
        pending = {e.event_id for e in await ctx.store.outbox_entries() if e.state is OutboxState.PENDING}
        if pending:
            await _deliver_now(ctx, sorted(pending), 5.0)
        return result.to_dict()


def _show(result: dict[str, Any], as_json: bool) -> int:
    if as_json:
        emit(result)
    else:
        state = "completed" if result["completed"] else f"not yet ({result['threshold_percent']} % completes it)"
        click.echo(
            f"watched {result['watched_seconds']:.0f} of {result['duration_seconds']:.0f} s "
            f"({result['percent']} %): {state}"
        )
    return 0 if result["completed"] else 1


@recording.command("progress")
@click.argument("lesson")
@click.argument("start", metavar="FROM", type=click.FloatRange(0))
@click.argument("end", metavar="TO", type=click.FloatRange(0))
@data_dir_option
@key_file_option
@json_option
def recording_progress(lesson: str, start: float, end: float, data_dir: str | None, key_file: str | None, as_json: bool) -> int:
    """Record that you played the recording from FROM to TO seconds (seeking is not watching).

    Kept privately in your data dir; once the unique seconds reach 90 % the lesson is complete
    and your completion goes privately to the host. Exits 0 once complete, 1 before.

    \b
    Example:
      nostr-training recording progress 31923:<host>:lesson-1 0 1800
    """
    return _show(_call(data_dir, key_file, "/recording/progress", {"lesson": lesson, "from": start, "to": end}), as_json)


@recording.command("status")
@click.argument("lesson")
@data_dir_option
@key_file_option
@json_option
def recording_status_cmd(lesson: str, data_dir: str | None, key_file: str | None, as_json: bool) -> int:
    """How much of a lesson's recording you watched. Exits 0 once complete, 1 before.

    \b
    Example:
      nostr-training recording status 31923:<host>:lesson-1 --json
    """
    return _show(_call(data_dir, key_file, "/recording/status", {"lesson": lesson}), as_json)


def register(cli: click.Group) -> None:
    cli.add_command(recording)
