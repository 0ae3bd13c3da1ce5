"""The adapters' small corpus (three files in two folders) and the record of the index built from it
(``tests/adapters/conftest.py``: the ``garden`` fixture)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag.pipeline import RagPipeline

FERNS = """# Ferns

Ferns reproduce with spores, not seeds.

## Watering

Water the ferns twice a week in summer and once a week in winter.
See the [fern care guide](https://example.org/ferns) &amp; keep the soil moist.
"""

CATS = """# Cats

Cats sleep about sixteen hours a day, mostly in the afternoon.
"""

TEAPOTS = """How to brew green tea

Brew green tea at 80 degrees for two minutes; boiling water makes it bitter.
"""


@dataclass(frozen=True)
class Garden:
    """The fake index and its files: ``ferns`` (garden/ferns.md, meta team=garden), ``cats`` (pets/cats.md, team=pets),
    ``tea`` (pets/tea.txt, team=pets)."""

    pipeline: RagPipeline
    root: Path
    ferns: Path
    cats: Path
    tea: Path
