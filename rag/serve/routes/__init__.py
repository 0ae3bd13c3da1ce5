"""The HTTP routes, one ``APIRouter`` per concern: ``answers`` (/ask, /search), ``documents`` (/documents,
/jobs), ``service`` (/health, /info) and ``openai`` (/v1). ``rag.serve.app`` includes them, in this order."""
