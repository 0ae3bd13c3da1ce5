"""A generator that writes to stdout while it answers (``RAG_GENERATOR=noisy_generator:NoisyGenerator``), as a
careless library might: `rag mcp` must keep its stdout for the protocol."""

from __future__ import annotations

import os
import sys

from rag.answer.generators.base import GenerationRequest
from rag.testing import EchoGenerator

NOISE = "noise from a library on stdout"


class NoisyGenerator(EchoGenerator):
    def generate(self, request: GenerationRequest) -> str:
        print(NOISE)  # Python's sys.stdout
        sys.stdout.flush()
        os.write(1, (NOISE + " (fd 1)\n").encode())  # the file descriptor itself, as C code would
        return super().generate(request)
