"""The index folder: manifest and generations (folder), vectors (FAISS), the SQLite store with its lexical index,
metadata filters compiled into both searches, and the consistency check."""
