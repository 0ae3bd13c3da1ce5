"""Process-wide runtime settings, set once and explicitly: torch's intra-op thread count.

Library code never changes them as a side effect of loading a model: ``RagPipeline`` calls ``configure_threads``
once with the configured ``threads`` (0 leaves torch's default: all cores). A second pipeline asking for another
count gets a warning, not a silent change under the first one's feet.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

_lock = threading.Lock()
_threads: int | None = None  # the count this process was set to (None: never set)


def configure_threads(threads: int) -> None:
    """Set torch's intra-op threads to ``threads`` (> 0) the first time it is asked; later calls with another
    count are refused with a warning (the process has one thread pool)."""
    global _threads
    if threads <= 0:
        return
    with _lock:
        if _threads == threads:
            return
        if _threads is not None:
            log.warning("torch already runs %d threads in this process; threads=%d ignored", _threads, threads)
            return
        import torch

        torch.set_num_threads(threads)
        _threads = threads
        log.info("torch set to %d threads", threads)
