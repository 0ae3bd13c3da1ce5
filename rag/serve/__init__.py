"""`rag serve`: the HTTP layer over one RagPipeline (FastAPI)."""

from rag.serve.app import ServerSettings, check_bind, create_app, is_loopback, serve

__all__ = ["ServerSettings", "check_bind", "create_app", "is_loopback", "serve"]
