"""The command line (`rag ...`): a thin layer over RagPipeline."""

from rag.cli.main import main

__all__ = ["main"]
