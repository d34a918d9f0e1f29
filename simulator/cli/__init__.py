"""The `convsim` command line."""

from simulator.cli._app import app, main

__all__ = ["app", "main"]
