"""CLI commands: daemon (being built)."""

import click


def register(cli: click.Group) -> None:
    """Add this module's commands to the top-level group."""
