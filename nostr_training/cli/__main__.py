"""``python -m nostr_training.cli``: the same as the ``nostr-training`` command."""

from . import main

main()
