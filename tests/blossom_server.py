"""The in-process Blossom server lives in the package (the demo uses it too); tests import it here."""

from __future__ import annotations

from nostr_training.media.blossom_server import BlossomServer

__all__ = ["BlossomServer"]
