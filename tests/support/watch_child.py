"""Run by tests/test_watch.py in a subprocess: the watcher of `rag watch` on the fakes, SIGKILLed at a chosen step
of its first watched commit (the steps of crash_child.py).

usage: python watch_child.py INDEX FOLDER TARGET N
Prints ``ready`` once the initial sync is done; from then on the N-th call of TARGET's step kills the process.

``SlowHashEmbedder`` (``RAG_EMBEDDER=watch_child:SlowHashEmbedder``, this folder on PYTHONPATH) makes a commit take
a while: embedding a text that holds ``SLOWPOKE`` creates the file named by ``$RAG_TEST_EMBED_MARKER`` and then
sleeps a second, so a test can signal a `rag watch` process while its commit is in flight.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from crash_child import kill_after

from rag.config import RagConfig
from rag.pipeline import RagPipeline
from rag.testing import HashEmbedder
from rag.watch import FolderWatcher

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

SLOW_WORD = "SLOWPOKE"


class SlowHashEmbedder(HashEmbedder):
    """HashEmbedder under its own name, slow for texts holding ``SLOWPOKE``."""

    @property
    def model_id(self) -> str:
        return "watch_child:SlowHashEmbedder"

    def embed_documents(self, texts: list[str]) -> NDArray[np.float32]:
        if any(SLOW_WORD in t for t in texts):
            marker = os.environ.get("RAG_TEST_EMBED_MARKER")
            if marker:
                Path(marker).touch()
            time.sleep(1.0)
        return super().embed_documents(texts)


def main() -> None:
    index, folder, target, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    armed = threading.Event()
    kill_after(target, n, armed)
    pipeline = RagPipeline(RagConfig(index=Path(index), quiet=True, batch_size=1), embedder=HashEmbedder())
    watcher = FolderWatcher(pipeline, [folder], quiet_ms=500)

    def announce() -> None:
        watcher.ready.wait()
        armed.set()
        print("ready", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    watcher.run()


if __name__ == "__main__":
    main()
