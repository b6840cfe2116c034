"""The error tree lists exactly what the package raises, and relay failures map onto it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from nostr_training import errors
from nostr_training.daemon.pool import PublishResult, publish_error, require_delivery

PACKAGE = Path(__file__).resolve().parent.parent / "nostr_training"

#: Errors in the tree that nothing raises yet, with who will; an entry that is raised fails
#: the test below, so the list only shrinks.
RESERVED: dict[str, str] = {}


def raised_names(source: str) -> set[str]:
    """Error names a module raises or builds: ``raise X``, ``raise X(...)`` and any call
    ``X(...)`` (an error built to be raised elsewhere, as ``publish_error`` does)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        target = None
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        elif isinstance(node, ast.Call):
            target = node.func
        if isinstance(target, ast.Name):
            found.add(target.id)
        elif isinstance(target, ast.Attribute):
            found.add(target.attr)
    return found


def package_raises() -> set[str]:
    found: set[str] = set()
    for file in PACKAGE.rglob("*.py"):
        if file != PACKAGE / "errors.py":
            found |= raised_names(file.read_text("utf-8"))
    return found


def test_every_error_in_the_tree_is_raised_somewhere():
    """A class counts as raised when it, or one of its subclasses, is raised or built by the
    package (outside errors.py): raising ``RelayRefused`` raises a ``RelayError``."""
    raised = package_raises()
    classes = {name: getattr(errors, name) for name in errors.__all__}
    assert all(inspect.isclass(c) and issubclass(c, errors.NostrTrainingError) for c in classes.values())

    def is_raised(cls: type) -> bool:
        return any(name in raised and issubclass(sub, cls) for name, sub in classes.items())

    dead = sorted(name for name, cls in classes.items() if not is_raised(cls) and name not in RESERVED)
    assert dead == [], f"in the error tree but never raised: {dead}"
    now_raised = sorted(name for name in RESERVED if is_raised(classes[name]))
    assert now_raised == [], f"raised now, remove from RESERVED: {now_raised}"


def test_the_tree_drawing_names_every_error():
    drawn = errors.__doc__ or ""
    assert [name for name in errors.__all__ if name not in drawn] == []


def test_the_detector_sees_raises_and_builds():
    source = "def f():\n    raise A('x')\n\ndef g():\n    raise m.B\n\ndef h():\n    return C('y')\n"
    assert raised_names(source) >= {"A", "B", "C"}
    assert "D" not in raised_names("class D(Exception):\n    pass\n\nx = D\n")


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("not-connected: relay unreachable", errors.RelayUnreachable),
        ("timeout: no answer within 10 s", errors.RelayTimeout),
        ("auth-required: no signer configured", errors.AuthRequired),
        ("blocked: not on the list", errors.RelayRefused),
        ("rate-limited: slow down", errors.RelayRefused),
        ("no prefix at all", errors.RelayRefused),
    ],
)
def test_a_failed_publish_is_a_typed_relay_error(message, error):
    result = PublishResult(False, message)
    assert type(result.error) is error
    assert str(result.error) == message
    assert str(publish_error(message, relay="wss://r.example")) == f"wss://r.example: {message}"


def test_a_delivered_publish_has_no_error():
    assert PublishResult(True, "").error is None
    assert PublishResult(False, "duplicate: already have it").error is None


def test_require_delivery_names_the_failure_that_says_most():
    ok, refused = PublishResult(True, ""), PublishResult(False, "blocked: not on the list")
    down, slow = PublishResult(False, "not-connected: down"), PublishResult(False, "timeout: no answer")
    assert require_delivery({"wss://a": ok, "wss://b": refused}) == ["wss://a"]
    with pytest.raises(errors.RelayRefused, match="wss://b: blocked") as caught:
        require_delivery({"wss://a": down, "wss://b": refused, "wss://c": slow})
    assert caught.value.reason == "blocked" and caught.value.relay == "wss://b"
    with pytest.raises(errors.RelayTimeout, match="wss://c"):
        require_delivery({"wss://a": down, "wss://c": slow})
    with pytest.raises(errors.RelayUnreachable, match="no relay"):
        require_delivery({})
