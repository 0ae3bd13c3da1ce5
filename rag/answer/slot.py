"""GeneratorSlot: the pipeline's generator, created on first use from the settings, once.

The twin of ``rag.embed.slot.EmbedderSlot``: the pipeline holds one, and the server's concurrent first questions
load the model once. ``warm`` loads it and reads the prompts it will be sent into its cache
(``rag.answer.turn.warm_up``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rag.config import RagConfig
from rag.models.runtime import configure_threads

if TYPE_CHECKING:
    from rag.answer.generators.base import Generator


class GeneratorSlot:
    """The generator ``config()`` names (read at first use), or ``generator`` when given (tests pass fakes)."""

    def __init__(self, config: Callable[[], RagConfig], generator: Generator | None = None) -> None:
        self._config = config
        self._generator = generator
        self._lock = threading.Lock()  # not the pipeline's lock: readers must not wait on a model load

    @property
    def loaded(self) -> Generator | None:
        return self._generator

    def get(self) -> Generator:
        if self._generator is None:
            with self._lock:
                if self._generator is None:
                    from rag.answer.generators.registry import create_generator

                    config = self._config()
                    configure_threads(config.models.threads)
                    self._generator = create_generator(config.answer)
        return self._generator

    def reset(self) -> None:
        """Drop the generator: the next ``get`` builds the one the settings name then."""
        with self._lock:
            self._generator = None

    def warm(self) -> None:
        """Load the generator and prime its prompt cache with the prompts the answer stages send."""
        from rag.answer.turn import warm_up

        warm_up(self.get())
