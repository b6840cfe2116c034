"""The daemon's local web view: templates, static files, page models and its security gate.

Served by ``daemon.web`` on the daemon's one loopback server; opened with ``nostr-training open``.
"""
