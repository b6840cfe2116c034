"""The daemon: relay pool, follows, outbox, local relay endpoint, and the app that wires them."""
