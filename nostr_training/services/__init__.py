"""What the CLI, the daemon's control API and the web view share: one function per user action.

Each service takes a ``ServiceContext`` (the store, the outbox, the signer, the clock and the
settings) and plain values, and returns plain values; none of them knows whether it runs inside
the daemon or in a short-lived CLI process with no daemon.
"""

from .context import ServiceContext

__all__ = ["ServiceContext"]
