"""CLI commands of infir.evaluate (registered by infir.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the main app."""
