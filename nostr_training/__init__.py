"""nostr-training: instructor-led live training sessions over Nostr."""

__version__ = "0.1.0"
