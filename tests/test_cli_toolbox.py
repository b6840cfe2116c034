"""The toolbox CLI: keys, event sign/verify, nip19, wrap/unwrap, dm.

Most tests run ``nostr_training.cli.main`` in-process (click's isolation swaps stdin/stdout);
the pipe tests run the installed ``nostr-training`` script in a shell, as a user would.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from nostr_training.cli import cli, main, toolbox
from nostr_training.event import Event, EventTemplate, sign_event, verify_event
from nostr_training.keys import Keys, load_key_file
from nostr_training.nips import nip59

EXE = Path(sys.executable).with_name("nostr-training")
LOW_COST = ["--log-n", "4"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines()]


def run(*args: str, input: str = "") -> Result:
    """Run the CLI in-process exactly as the console script does (main -> sys.exit)."""
    with CliRunner().isolation(input=input) as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return Result(code, out.getvalue().decode(), err.getvalue().decode())


def shell(pipeline: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True, env=env, timeout=60)


def assert_one_line_error(result, code: int = 1) -> None:
    assert result.code == code if isinstance(result, Result) else result.returncode == code
    err = result.err if isinstance(result, Result) else result.stderr
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


@pytest.fixture
def me(home) -> dict:
    result = run("keys", "generate", *LOW_COST)
    assert result.code == 0, result.err
    return result.lines[0]


# keys -------------------------------------------------------------------------------------


def test_generate_writes_the_default_key_file(home, me):
    keys = load_key_file(home / "key.ncryptsec", "correct horse")
    assert me == {"pubkey": keys.public_key, "npub": keys.npub}


def test_generate_refuses_to_overwrite_without_force(home, me):
    again = run("keys", "generate", *LOW_COST)
    assert_one_line_error(again)
    assert "already exists" in again.err
    forced = run("keys", "generate", "--force", *LOW_COST)
    assert forced.code == 0 and forced.lines[0]["pubkey"] != me["pubkey"]


def test_key_file_option_and_environment(home, tmp_path, monkeypatch):
    explicit = tmp_path / "host.ncryptsec"
    made = run("keys", "generate", "--key-file", str(explicit), *LOW_COST).lines[0]
    assert explicit.exists() and not (home / "key.ncryptsec").exists()
    monkeypatch.setenv("NOSTR_TRAINING_KEY_FILE", str(explicit))
    assert run("keys", "show").lines == [made]


def test_import_nsec_and_hex_then_show(home, alice, tmp_path):
    imported = run("keys", "import", *LOW_COST, input=alice.nsec + "\n")
    assert imported.lines == [{"pubkey": alice.public_key, "npub": alice.npub}]
    assert run("keys", "show").lines == imported.lines
    other = tmp_path / "hex.ncryptsec"
    assert run("keys", "import", "--key-file", str(other), *LOW_COST, input=alice.secret_hex).lines == imported.lines


def test_exported_ncryptsec_imports_elsewhere(home, me, tmp_path):
    ncryptsec = run("keys", "export").lines[0]["ncryptsec"]
    copy = tmp_path / "copy.ncryptsec"
    assert run("keys", "import", "--key-file", str(copy), *LOW_COST, input=ncryptsec).lines == [me]


def test_import_rejects_garbage(home):
    result = run("keys", "import", *LOW_COST, input="not a key\n")
    assert_one_line_error(result)
    assert not (home / "key.ncryptsec").exists()


def test_export_is_encrypted_unless_asked(home, me):
    exported = run("keys", "export")
    assert exported.code == 0 and exported.err == ""
    ncryptsec = exported.lines[0]["ncryptsec"]
    assert Keys.from_ncryptsec(ncryptsec, "correct horse").public_key == me["pubkey"]
    assert run("nip19", "decode", ncryptsec).lines == [{"type": "ncryptsec", "log_n": 4, "key_security": 2}]
    plain = run("keys", "export", "--nsec")
    assert Keys.parse(plain.lines[0]["nsec"]).public_key == me["pubkey"]
    assert "warning" in plain.err.lower() and len(plain.err.splitlines()) == 1


def test_wrong_password_and_missing_key_are_one_line(home, me, monkeypatch, tmp_path):
    monkeypatch.setenv("NOSTR_TRAINING_PASSWORD", "wrong")
    assert_one_line_error(run("keys", "show"))
    missing = run("keys", "show", "--key-file", str(tmp_path / "none.ncryptsec"))
    assert_one_line_error(missing)
    assert "keys generate" in missing.err


# event ------------------------------------------------------------------------------------


def test_sign_several_templates(home, me):
    templates = [
        {"kind": 1, "tags": [["t", "nostr"]], "content": "héllo ✓", "created_at": 1_800_000_000},
        {"kind": 31925, "tags": [["d", "x"], ["a", LESSON_A], ["status", "accepted"]], "content": ""},
    ]
    result = run("event", "sign", "--allow-unknown-lesson", input="\n".join(json.dumps(t) for t in templates))
    assert result.code == 0, result.err
    events = [verify_event(Event.from_json(line)) for line in result.out.splitlines()]
    assert [e.pubkey for e in events] == [me["pubkey"]] * 2
    assert events[0].content == "héllo ✓" and events[0].created_at == 1_800_000_000
    assert events[1].created_at > 1_700_000_000


LESSON_A = "31923:" + "ab" * 32 + ":lesson-1"


def test_sign_refuses_an_rsvp_to_a_lesson_nobody_knows(home, me):
    template = {"kind": 31925, "tags": [["d", "x"], ["a", LESSON_A], ["status", "accepted"]], "content": ""}
    result = run("event", "sign", input=json.dumps(template))
    assert result.code == 1 and result.out == "" and "no lesson" in result.err and "--allow-unknown-lesson" in result.err


@pytest.mark.parametrize("tags, field", [
    ([["d", "x"], ["a", LESSON_A], ["status", "maybe"]], "status"),
    ([["d", "x"], ["status", "accepted"]], "'a'"),
])
def test_sign_refuses_a_training_kind_its_parser_refuses(home, me, tags, field):
    """Nothing is signed when one template of ours would be misread by every client."""
    templates = [{"kind": 1, "tags": [], "content": "fine"}, {"kind": 31925, "tags": tags, "content": ""}]
    result = run("event", "sign", input="\n".join(json.dumps(t) for t in templates))
    assert result.code == 1 and result.out == "" and field in result.err


def test_sign_accepts_pretty_printed_json(home, me):
    result = run("event", "sign", input=json.dumps({"kind": 1, "tags": [], "content": "x"}, indent=2))
    assert result.code == 0 and len(result.lines) == 1


def test_verify_good_and_bad(alice, bob):
    good = sign_event(EventTemplate(1, (), "hi", 1_800_000_000), alice.secret)
    ok = run("event", "verify", input=good.to_json())
    assert ok.code == 0 and ok.lines == [{"id": good.id, "valid": True}]
    tampered = dict(good.to_dict(), content="changed")
    bad = run("event", "verify", input=good.to_json() + "\n" + json.dumps(tampered))
    assert bad.lines == [{"id": good.id, "valid": True}]
    assert_one_line_error(bad)
    assert "#2" in bad.err and "id does not match" in bad.err


@pytest.mark.parametrize(
    "stdin",
    ['{"kind": 1', "", "[1,2,3]", '{"id": "zz"}', '{"kind":1,"tags":[[1]],"content":""}'],
    ids=["truncated", "empty", "not-an-object", "bad-id", "bad-tag"],
)
def test_verify_malformed_input(stdin):
    assert_one_line_error(run("event", "verify", input=stdin))


@pytest.mark.parametrize("stdin", ["nonsense", '{"tags":[],"content":""}', '{"kind":"1"}'])
def test_sign_malformed_template(home, me, stdin):
    assert_one_line_error(run("event", "sign", input=stdin))


# nip19 ------------------------------------------------------------------------------------

PK = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d"


def test_nip19_known_answers():
    assert run("nip19", "encode", "npub", PK).lines == [{"bech32": "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6"}]
    nprofile = "nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gpp4mhxue69uhhytnc9e3k7mgpz4mhxue69uhkg6nzv9ejuumpv34kytnrdaksjlyr9p"
    encoded = run("nip19", "encode", "nprofile", PK, "--relay", "wss://r.x.com", "--relay", "wss://djbas.sadkb.com")
    assert encoded.lines == [{"bech32": nprofile}]
    assert run("nip19", "decode", "nostr:" + nprofile).lines == [
        {"type": "nprofile", "pubkey": PK, "relays": ["wss://r.x.com", "wss://djbas.sadkb.com"]}
    ]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["note", "ab" * 32], {"type": "note", "id": "ab" * 32}),
        (["nsec", "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"],
         {"type": "nsec", "secret_key": "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"}),
        (["nevent", "ab" * 32, PK, "31923", "--relay", "wss://r.example"],
         {"type": "nevent", "id": "ab" * 32, "relays": ["wss://r.example"], "author": PK, "kind": 31923}),
        (["nevent", "ab" * 32], {"type": "nevent", "id": "ab" * 32, "relays": [], "author": None, "kind": None}),
        (["naddr", "31923", PK, "lesson-1"], {"type": "naddr", "kind": 31923, "pubkey": PK, "identifier": "lesson-1", "relays": []}),
    ],
)
def test_nip19_round_trip(args, expected):
    encoded = run("nip19", "encode", *args)
    assert encoded.code == 0, encoded.err
    assert run("nip19", "decode", encoded.lines[0]["bech32"]).lines == [expected]


def test_nip19_bad_input():
    assert_one_line_error(run("nip19", "decode", "npub1qqqqqq"))
    assert_one_line_error(run("nip19", "encode", "npub", "xyz"))
    assert_one_line_error(run("nip19", "encode", "naddr", "31923", PK), code=2)
    assert_one_line_error(run("nip19", "encode", "npub", PK, "--relay", "wss://r"), code=2)
    assert_one_line_error(run("nip19", "encode", "nsecret", PK), code=2)


# wrap, unwrap, dm -------------------------------------------------------------------------


def test_wrap_to_someone_else_and_unwrap_as_them(home, me, bob):
    result = run("wrap", "--to", bob.npub, "--expiration", "1900000000", "--relay-hint", "wss://inbox.example",
                 input='{"kind":14,"tags":[],"content":"private ✓","created_at":1800000000}')
    assert result.code == 0, result.err
    wrap = Event.from_dict(result.lines[0])
    assert wrap.kind == 1059 and wrap.pubkey != me["pubkey"]
    assert wrap.tags == (("p", bob.public_key, "wss://inbox.example"), ("expiration", "1900000000"))
    opened = nip59.unwrap_with_key(wrap, bob.secret)
    assert opened.author == me["pubkey"] and opened.rumor.content == "private ✓"


def test_ephemeral_wrap_and_several_recipients(home, me, alice, bob):
    result = run("wrap", "--ephemeral", "--to", alice.public_key, "--to", bob.npub, input='{"kind":8310,"tags":[],"content":"k"}')
    assert [(w["kind"], w["tags"][0][1]) for w in result.lines] == [(21059, alice.public_key), (21059, bob.public_key)]


def test_unwrap_a_wrap_sent_to_me(home, me, alice):
    wrap = nip59.gift_wrap_with_key(EventTemplate(14, (), "for you", 1_800_000_000), alice.secret, me["pubkey"], now=1_800_000_000)
    result = run("unwrap", input=wrap.to_json())
    assert result.code == 0, result.err
    assert result.lines[0]["pubkey"] == alice.public_key and result.lines[0]["content"] == "for you"
    assert "sig" not in result.lines[0]


def test_unwrap_refuses_a_wrap_for_someone_else(home, me, alice, bob):
    wrap = nip59.gift_wrap_with_key(EventTemplate(14, (), "not yours", 1_800_000_000), alice.secret, bob.public_key, now=1_800_000_000)
    assert_one_line_error(run("unwrap", input=wrap.to_json()))
    assert_one_line_error(run("unwrap", input='{"not": "an event"}'))


def test_dm_wraps_for_receiver_and_sender(home, me, bob):
    result = run("dm", "--to", bob.npub, "--subject", "Lesson 3", "See you at 18:00")
    assert result.code == 0, result.err
    assert [w["tags"][0][1] for w in result.lines] == [bob.public_key, me["pubkey"]]
    rumor = nip59.unwrap_with_key(Event.from_dict(result.lines[0]), bob.secret).rumor
    assert rumor.kind == 14 and rumor.content == "See you at 18:00"
    assert rumor.tags == (("p", bob.public_key), ("subject", "Lesson 3"))


def test_bad_recipient_is_a_usage_error(home, me):
    assert_one_line_error(run("dm", "--to", "npub1nothing", "x"), code=2)
    assert_one_line_error(run("wrap", "--to", "zz", input="{}"), code=2)


# help -------------------------------------------------------------------------------------


def toolbox_commands() -> list[list[str]]:
    paths = []
    for command in (toolbox.keys_group, toolbox.event_group, toolbox.nip19_group, toolbox.wrap_command, toolbox.unwrap_command, toolbox.dm_command):
        paths.append([command.name])
        if isinstance(command, click.Group):
            paths += [[command.name, sub] for sub in command.commands]
    return paths


def test_every_command_is_registered():
    result = run("--help")
    ctx = click.Context(cli)
    for path in toolbox_commands():
        if len(path) == 1:
            assert path[0] in cli.list_commands(ctx) and f"  {path[0]} " in result.out
            assert cli.get_command(ctx, path[0]) is getattr(toolbox, cli_attribute(path[0]))


def cli_attribute(name: str) -> str:
    from nostr_training.cli import COMMANDS

    return COMMANDS[name][1]


@pytest.mark.parametrize("path", toolbox_commands(), ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = run(*path, "--help")
    assert result.code == 0
    assert "Example:" in result.out and "nostr-training " + path[0] in result.out


# As a user runs it: the installed script, real pipes -----------------------------------------


@pytest.fixture
def user_env(home, me) -> dict[str, str]:
    return dict(os.environ)


def test_pipe_sign_into_verify(user_env):
    proc = shell(
        f"echo '{{\"kind\":1,\"tags\":[],\"content\":\"piped\"}}' | {shlex.quote(str(EXE))} event sign | {shlex.quote(str(EXE))} event verify",
        user_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["valid"] is True


def test_pipe_wrap_into_unwrap_to_myself(user_env, me):
    exe = shlex.quote(str(EXE))
    proc = shell(f"echo '{{\"kind\":14,\"tags\":[],\"content\":\"note to self\"}}' | {exe} wrap --to {me['npub']} | {exe} unwrap", user_env)
    assert proc.returncode == 0, proc.stderr
    rumor = json.loads(proc.stdout)
    assert rumor["pubkey"] == me["pubkey"] and rumor["content"] == "note to self"


def test_script_bad_input_and_usage_error(user_env):
    exe = shlex.quote(str(EXE))
    bad = shell(f"echo '{{oops' | {exe} event verify", user_env)
    assert_one_line_error(bad, 1)
    assert bad.stdout == ""
    usage = shell(f"{exe} event sign --no-such-flag < /dev/null", user_env)
    assert_one_line_error(usage, 2)


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"kind":1,"created_at":' + "9" * 5000 + ',"tags":[],"content":""}'],
    ids=["nested-100000-deep", "5000-digit-number"],
)
@pytest.mark.parametrize("command", [("event", "verify"), ("event", "sign"), ("publish", "--relay", "ws://127.0.0.1:9")])
def test_json_the_reader_refuses_is_one_line_not_a_traceback(me, text, command):
    assert_one_line_error(run(*command, input=text), 1)


def test_a_created_at_past_what_sqlite_holds_is_refused(me):
    result = run("event", "verify", input=json.dumps({
        "id": "0" * 64, "pubkey": me["pubkey"], "created_at": 2**63, "kind": 1, "tags": [], "content": "", "sig": "0" * 128,
    }))
    assert_one_line_error(result, 1)
    assert "created_at" in result.err


@pytest.mark.parametrize("kind", [13, 14, 8310])
def test_rumor_only_kinds_are_never_signed(me, kind):
    result = run("event", "sign", input=json.dumps({"kind": kind, "tags": [], "content": "secret"}))
    assert_one_line_error(result, 1)
    assert "wrap" in result.err and result.out == ""


@pytest.mark.parametrize("secret", ["00" * 32, "ff" * 32])
def test_nsec_of_an_out_of_range_key_is_refused(secret):
    assert_one_line_error(run("nip19", "encode", "nsec", secret), 1)
