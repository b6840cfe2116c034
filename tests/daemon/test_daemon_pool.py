"""The relay pool's contract: ``RelayPool`` and every stand-in implement ``Pool`` exactly, so a
fake cannot drift from what the daemon calls (sync where the pool is sync, same parameters)."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

from nostr_training.daemon.pool import Pool, RelayState
from nostr_training.daemon.relays import RelayPool

from daemon_fakes import FakePool

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _streaming_pool() -> type:
    spec = importlib.util.spec_from_file_location("daemon_memory", BENCHMARKS / "daemon_memory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.StreamingPool


def protocol_members() -> dict[str, object]:
    return {name: value for name, value in vars(Pool).items() if inspect.isfunction(value) and not name.startswith("_")}


def _shape(function: object) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]  # type: ignore[arg-type]


def mismatches(cls: type) -> list[str]:
    out = []
    for name, wanted in protocol_members().items():
        got = getattr(cls, name, None)
        if got is None:
            out.append(f"{name}: missing")
            continue
        if inspect.iscoroutinefunction(got) != inspect.iscoroutinefunction(wanted):
            out.append(f"{name}: {'async' if inspect.iscoroutinefunction(wanted) else 'sync'} in Pool")
        if _shape(got) != _shape(wanted):
            out.append(f"{name}: parameters {_shape(got)} != {_shape(wanted)}")
    return out


def test_the_protocol_is_what_the_daemon_uses():
    assert set(protocol_members()) == {
        "add_relay", "remove_relay", "publish", "subscribe", "unsubscribe", "fetch", "status", "close"
    }
    assert not inspect.iscoroutinefunction(Pool.status)


@pytest.mark.parametrize("implementation", [RelayPool, FakePool, "StreamingPool"])
def test_implementations_follow_the_protocol(implementation):
    cls = _streaming_pool() if implementation == "StreamingPool" else implementation
    assert mismatches(cls) == []


def test_a_drifted_fake_is_caught():
    class Drifted:
        async def add_relay(self, url): ...
        def publish(self, event, relays, timeout=10): ...
        async def status(self): ...

    found = mismatches(Drifted)
    assert "publish: async in Pool" in found and "status: sync in Pool" in found
    assert "close: missing" in found


def test_relay_states():
    assert {s.value for s in RelayState} == {"connecting", "connected", "authenticating", "authenticated", "backoff", "closed"}
    assert {s for s in RelayState if s.is_up} == {RelayState.CONNECTED, RelayState.AUTHENTICATING, RelayState.AUTHENTICATED}
