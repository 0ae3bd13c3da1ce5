"""Training for ``rag tune``: sentence-transformers' trainer with MultipleNegativesRankingLoss over (query,
positive, hard negative) triplets, the other passages of a batch as further negatives. Mixed precision where the
hardware has it natively (bf16 on CPUs with AVX512-BF16/AMX, fp16 on CUDA), else float32; bounded by epochs,
``max_steps`` and a wall-clock limit; the trainer's progress bar shows the ETA."""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from rag.embed.hardware import cpu_has_native_bf16

log = logging.getLogger(__name__)


# The recipe per kind of pairs (epochs, learning rate), measured on SciFact (docs/benchmarks.md): the user's
# own queries take a bolder one (half of SciFact's queries as pairs, scored on the other half: dense nDCG@10 +0.009
# at 1 epoch and 2e-5, +0.054 at 3 epochs and 1e-4); written questions and cloze sentences are only a proxy for
# real queries and lose at that rate (-0.045 and -0.014 on SciFact), so they keep the gentle one.
GIVEN_RECIPE = (3.0, 1e-4)
PROXY_RECIPE = (1.0, 2e-5)


@dataclass(frozen=True)
class TrainSettings:
    """How ``rag tune`` trains (recorded in the manifest with the tuned model). ``epochs`` and ``learning_rate`` 0:
    the recipe for the kind of pairs (``recipe``)."""

    epochs: float = 0.0
    batch_size: int = 32
    learning_rate: float = 0.0
    warmup_ratio: float = 0.1
    max_steps: int = 0  # 0: as many as the epochs take
    max_minutes: float = 10.0  # wall-clock limit of the training (0: none)
    max_seq_length: int = 128  # tokens of a text in training (passages are cut; about 2x faster than 256)
    seed: int = 0

    def manifest(self) -> dict[str, Any]:
        return asdict(self)

    def recipe(self, given: bool) -> TrainSettings:
        """These settings with ``epochs``/``learning_rate`` left at 0 filled in: ``GIVEN_RECIPE`` for the user's
        own pairs, ``PROXY_RECIPE`` for generated or cloze ones."""
        epochs, rate = GIVEN_RECIPE if given else PROXY_RECIPE
        return replace(self, epochs=self.epochs or epochs, learning_rate=self.learning_rate or rate)


@dataclass(frozen=True)
class TrainResult:
    steps: int
    epochs: float
    seconds: float
    precision: str


def precision_flags(device: str) -> tuple[str, dict[str, bool]]:
    """The mixed precision the trainer uses on ``device``: fp16 on CUDA, bf16 on CPUs with native bf16."""
    if device.startswith("cuda"):
        return "float16", {"fp16": True}
    if cpu_has_native_bf16():
        return "bfloat16", {"bf16": True}
    return "float32", {}


def train(
    model: Any, triplets: list[tuple[str, str, str]], settings: TrainSettings, *, quiet: bool = False
) -> TrainResult:
    """Train ``model`` (a SentenceTransformer, changed in place) on (query, positive, negative) triplets; rows
    whose negative is empty train on in-batch negatives alone."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    try:  # sentence-transformers 6 moved them; 3-5 have them here
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    except ImportError:
        from sentence_transformers.losses import MultipleNegativesRankingLoss
        from sentence_transformers.training_args import BatchSamplers
    from transformers import TrainerCallback

    columns: dict[str, list[str]] = {"anchor": [q for q, _, _ in triplets], "positive": [p for _, p, _ in triplets]}
    if all(n for _, _, n in triplets):
        columns["negative"] = [n for _, _, n in triplets]
    dataset = Dataset.from_dict(columns)
    kept_length = model.max_seq_length
    model.max_seq_length = min(kept_length, settings.max_seq_length)
    device = str(model.device)
    precision, flags = precision_flags(device)
    started = time.monotonic()

    class Deadline(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if settings.max_minutes and time.monotonic() - started > settings.max_minutes * 60:
                log.info(
                    "training stopped at its time limit (%.1f min) after %d steps",
                    settings.max_minutes,
                    state.global_step,
                )
                control.should_training_stop = True
            return control

    with tempfile.TemporaryDirectory(prefix="rag-tune-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=settings.epochs,
            max_steps=settings.max_steps or -1,
            per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            warmup_steps=settings.warmup_ratio,  # a float below 1: a share of the steps (transformers 5)
            batch_sampler=BatchSamplers.NO_DUPLICATES,  # a passage twice in a batch would be its own negative
            save_strategy="no",
            report_to=[],
            logging_strategy="no",  # the trainer prints its logs to stdout (breaks --json); the bar shows progress
            disable_tqdm=quiet,
            seed=settings.seed,
            use_cpu=not device.startswith("cuda"),
            dataloader_num_workers=0,
            **flags,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            loss=MultipleNegativesRankingLoss(model),
            callbacks=[Deadline()],
        )
        try:
            with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its metrics; stdout is the result's
                state = trainer.train()
        finally:
            model.max_seq_length = kept_length
    log.info("trained %d steps, loss %.3f", state.global_step, state.training_loss)
    steps = int(getattr(state, "global_step", 0))
    epochs = float(trainer.state.epoch or 0.0)
    return TrainResult(steps, epochs, time.monotonic() - started, precision)
