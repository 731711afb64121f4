"""Continued (domain-adaptive) pretraining on plain text: causal LM for decoders, masked LM for encoders."""

from __future__ import annotations

from typing import ClassVar

from datasets import Dataset
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase

from open_autoglm.config.data import DataConfig
from open_autoglm.config.sections import ModelConfig, TrainConfig
from open_autoglm.models.loading import has_masked_lm_head
from open_autoglm.tasks.base import TASKS, BaseTask, PreparedData


def pack_blocks(
    texts: list[str], tokenizer: PreTrainedTokenizerBase, block: int
) -> tuple[list[list[int]], int]:
    """Concatenate documents (each ended by eos) and cut into full blocks, so no compute goes to padding.

    Returns the blocks and the number of trailing tokens that did not fill a block.
    """
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream += bos + ids + eos
    usable = len(stream) // block * block
    return [stream[i : i + block] for i in range(0, usable, block)], len(stream) - usable


@TASKS.register
class PretrainTask(BaseTask):
    name: ClassVar[str] = "pretrain"
    kind: ClassVar[str] = "pretrain"
    default_model: ClassVar[str] = "smollm2"  # causal LM pretraining; name an encoder for masked LM
    metric: ClassVar[str] = "perplexity"
    greater_is_better: ClassVar[bool] = False

    def objective(self, model_path: str, model_cfg: ModelConfig) -> str:
        """Masked LM where the architecture has one (encoders), causal LM otherwise."""
        return "masked_lm" if has_masked_lm_head(model_path, model_cfg) else "causal_lm"

    def head_names(self, objective: str) -> tuple[str, ...]:
        return ("lm_head", "cls")

    def prepare(
        self,
        splits: dict[str, list[dict]],
        tokenizer: PreTrainedTokenizerBase,
        data: DataConfig,
        train: TrainConfig,
        objective: str,
    ) -> PreparedData:
        max_length = data.max_length
        datasets, dropped = {}, {}
        for split, rows in splits.items():
            texts = [data.text_prefix + r["text"] for r in rows]
            if objective == "causal_lm":
                blocks, tail = pack_blocks(texts, tokenizer, max_length)
                if tail:
                    dropped[f"{split}: tokens after the last full block"] = tail
                datasets[split] = Dataset.from_dict(
                    {"input_ids": blocks, "length": [max_length] * len(blocks)}
                )
            else:  # masked LM: one example per document, truncated; the collator masks train.mlm_probability
                enc = tokenizer(texts, truncation=True, max_length=max_length)
                datasets[split] = Dataset.from_dict(
                    {"input_ids": enc["input_ids"], "length": [len(ids) for ids in enc["input_ids"]]}
                )
            if len(datasets[split]) == 0:
                raise ValueError(f"{split}: no full block of {max_length} tokens; lower data.max_length")
        collator = DataCollatorForLanguageModeling(
            tokenizer, mlm=objective == "masked_lm", mlm_probability=train.mlm_probability
        )
        return PreparedData(datasets=datasets, collator=collator, dropped=dropped)
