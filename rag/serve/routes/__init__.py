"""The HTTP routes, one ``APIRouter`` per concern: ``answers`` (/ask, /search), ``documents`` (/documents,
/jobs), ``service`` (/health, /info), ``openai`` (/v1) and ``page`` (the web page at / and its files under
/web/). ``rag.serve.app`` includes them, in this order."""
