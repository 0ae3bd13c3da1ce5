"""A generator that behaves like a careless library while it answers (``RAG_GENERATOR=careless_generator:
CarelessGenerator``): it reads standard input, starts a child process that inherits it and reads it too, logs a
warning through transformers' logger and raises a Python warning. `rag ask` must keep the user's stdin unread and
the terminal free of the library noise (unless -v)."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

from rag.answer.generators.base import GenerationRequest
from rag.testing import EchoGenerator

LIBRARY_WARNING = "Loading a GGUF checkpoint (library noise)"
PYTHON_WARNING = "a FutureWarning from a library"


class CarelessGenerator(EchoGenerator):
    def generate(self, request: GenerationRequest) -> str:
        sys.stdin.readline()  # Python's stdin, as a library asking for confirmation would
        subprocess.run([sys.executable, "-c", "import sys; sys.stdin.readline()"], check=True)  # stdin inherited
        logging.getLogger("transformers.quantizers.quantizer_gguf").warning(LIBRARY_WARNING)
        warnings.warn(PYTHON_WARNING, FutureWarning, stacklevel=1)
        return super().generate(request)
