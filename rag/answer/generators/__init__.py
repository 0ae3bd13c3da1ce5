"""Generator backends: the ``Generator`` base class, the registry, and the local (transformers), OpenAI-compatible
and extractive backends."""
