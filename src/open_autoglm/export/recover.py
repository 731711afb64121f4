"""The recovery fine-tune after pruning: the whole pruned model trains briefly on the train split, so the layers
that lost heads and neurons re-balance around what is left.

A plain Trainer, not train's job: the pruned model is a full model with shapes of its own, it has no method
(LoRA or other) to apply, and export keeps no checkpoints of it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn
from transformers import (
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)


@dataclass
class Recovery:
    epochs: float
    lr: float
    rows: int
    steps: int
    train_loss: float | None  # mean training loss (None: no step ran)
    seconds: float


def recover(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    truth: Sequence[int],
    max_length: int,
    *,
    epochs: float,
    lr: float,
    batch_size: int,
    seed: int,
) -> Recovery:
    """Fine-tune `model` in place for `epochs` over (texts, truth); leaves it in eval mode."""
    started = time.perf_counter()
    if epochs == 0:  # recovery turned off
        return Recovery(epochs, lr, len(texts), 0, None, 0.0)
    model.requires_grad_(True)  # all of it trains, whatever an adapter's merge left frozen
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    rows = [  # a plain list is a dataset to the Trainer; the collator pads each batch
        {name: encoded[name][i] for name in encoded} | {"labels": label} for i, label in enumerate(truth)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            num_train_epochs=epochs,
            learning_rate=lr,
            per_device_train_batch_size=batch_size,
            warmup_steps=0.1,  # a tenth of the steps, so the first updates do not jolt the freshly pruned model
            lr_scheduler_type="linear",
            save_strategy="no",
            report_to="none",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=True,
            seed=seed,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=rows,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        trainer.remove_callback(PrinterCallback)  # it prints the final figures, which the report holds
        output = trainer.train()
    model.eval()
    steps = int(output.global_step)
    return Recovery(
        epochs=epochs,
        lr=lr,
        rows=len(texts),
        steps=steps,
        train_loss=round(float(output.training_loss), 6) if steps else None,
        seconds=round(time.perf_counter() - started, 2),
    )
