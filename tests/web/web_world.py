"""A small world for the web view's browser tests: daemons of real people on one ManualClock
over a real relay on loopback, and Debian's chromium driven by Playwright.

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run`` installs it when absent):
``playwright install`` cannot download browsers here, so Playwright launches
``/usr/bin/chromium`` by path, headless, with a fresh profile per launch.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nostr_training.cli.web import web_url
from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.config import load_config
from nostr_training.daemon.live import LiveSessions
from nostr_training.keys import Keys
from nostr_training.signer import LocalSigner

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
]


def require_chromium() -> None:
    """Debian's chromium must be there (``./dev test`` installs it): a skipped browser test proves nothing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: ./dev test installs it (apt-get install -y chromium)")




class Person:
    """One user: a data dir, a key, a daemon on the shared clock, its live-sessions component."""

    def __init__(self, home: Path, keys: Keys, name: str):
        self.home, self.keys, self.name = home, keys, name
        self.daemon: Daemon | None = None
        self.live: LiveSessions | None = None

    @property
    def pubkey(self) -> str:
        return self.keys.public_key

    @property
    def ctx(self) -> Any:
        assert self.daemon is not None
        return self.daemon.services

    async def start(self, relay: str, clock: ManualClock, *, courses: tuple[str, ...] = (), web: bool = True) -> None:
        config = load_config(self.home).with_overrides(relays=[relay], port=0)
        extra = dict(config.extra)
        if not web:
            extra["web"] = {"enabled": False}
        config = replace(config, follow_courses=courses, extra=extra)
        self.live = LiveSessions(interval=3600)
        self.daemon = Daemon(config, signer=LocalSigner(self.keys), clock=clock, components=(self.live,))
        await self.daemon.start()

    @property
    def base(self) -> str:
        assert self.daemon is not None and self.daemon.server is not None
        return self.daemon.server.http_url

    def login_url(self, lesson: str | None = None, *, teach: bool = False) -> str:
        assert self.daemon is not None and self.daemon.server is not None
        return web_url(self.base, self.daemon.server.token, lesson, teach=teach)

    async def stop(self) -> None:
        if self.daemon is not None:
            await self.daemon.stop()
            self.daemon = None


def make_video(path: Path, seconds: int) -> Path:
    """A tiny VP8 WebM of ``seconds`` (a test pattern, 64x48 at 4 fps), made with Debian's ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("ffmpeg is missing: ./dev test installs it (apt-get install -y ffmpeg)")
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size=64x48:rate=4:duration={seconds}",
         "-c:v", "libvpx", "-b:v", "16k", "-g", "4", str(path)],
        check=True, timeout=60,
    )
    return path


async def launch_browser() -> tuple[Any, Any]:
    """(playwright, browser): Debian's chromium, headless, a fresh temporary profile."""
    from playwright.async_api import async_playwright

    playwright = await async_playwright().start()
    browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    return playwright, browser
