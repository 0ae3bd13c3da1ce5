"""``rag tune``: adapt the embedder to the index's own documents (pairs -> hard negatives -> training -> held-out
scores -> apply as a new generation). The entry point is ``RagPipeline.tune``; ``rag.tune.run`` wires the steps."""
