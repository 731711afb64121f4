"""Supervised fine-tuning of a causal LM: the loss is on the assistant's tokens only.

A tokenizer with a chat template renders the conversation with it; one without gets a plain
"### Instruction / ### Response" layout. Either way the rendered text is cut into segments, each
marked trainable (assistant replies) or not (system, user, template scaffolding), and the labels of
untrainable tokens are -100.
"""

from __future__ import annotations

from typing import Any, ClassVar

from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from open_autoglm.config.data import DataConfig
from open_autoglm.config.sections import ModelConfig, TrainConfig
from open_autoglm.tasks.base import TASKS, BaseTask, PreparedData

IGNORE_INDEX = -100
PLAIN_USER = "### Instruction:\n{content}\n\n### Response:\n"


def to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """A canonical SFT row (prompt/response or messages) as a chat."""
    if "messages" in row:
        return list(row["messages"])
    messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    return messages + [
        {"role": "user", "content": row["prompt"]},
        {"role": "assistant", "content": row["response"]},
    ]


def segments(messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase) -> list[tuple[str, bool]]:
    """The conversation as (text, trainable) pieces whose concatenation is the full rendered text."""
    if getattr(tokenizer, "chat_template", None):
        return _template_segments(messages, tokenizer)
    pieces: list[tuple[str, bool]] = []
    for message in messages:
        if message["role"] == "system":
            pieces.append((message["content"] + "\n\n", False))
        elif message["role"] == "user":
            pieces.append((PLAIN_USER.format(content=message["content"]), False))
        else:
            pieces.append((message["content"] + (tokenizer.eos_token or ""), True))
            pieces.append(("\n\n", False))
    return pieces


def _template_segments(
    messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase
) -> list[tuple[str, bool]]:
    def render(msgs: list[dict[str, str]], generation_prompt: bool) -> str:
        return str(
            tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation_prompt)
        )

    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(messages[:i], generation_prompt=True)
        after = render(messages[: i + 1], generation_prompt=False)
        if not (before.startswith(done) and after.startswith(before)):
            raise ValueError("the tokenizer's chat template does not render conversations incrementally")
        pieces += [(before[len(done) :], False), (after[len(before) :], True)]
        done = after
    return pieces


def encode_conversation(
    messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> dict[str, Any]:
    input_ids: list[int] = []
    labels: list[int] = []
    if tokenizer.bos_token_id is not None and not getattr(tokenizer, "chat_template", None):
        input_ids, labels = [tokenizer.bos_token_id], [IGNORE_INDEX]
    for text, trainable in segments(messages, tokenizer):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        labels += ids if trainable else [IGNORE_INDEX] * len(ids)
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


@TASKS.register
class SftTask(BaseTask):
    name: ClassVar[str] = "sft"
    kind: ClassVar[str] = "sft"
    metric: ClassVar[str] = "perplexity"
    greater_is_better: ClassVar[bool] = False

    def objective(self, model_path: str, model_cfg: ModelConfig) -> str:
        return "causal_lm"

    def head_names(self, objective: str) -> tuple[str, ...]:
        return ("lm_head",)

    def prepare(
        self,
        splits: dict[str, list[dict]],
        tokenizer: PreTrainedTokenizerBase,
        data: DataConfig,
        train: TrainConfig,
        objective: str,
    ) -> PreparedData:
        datasets, dropped = {}, {}
        for split, rows in splits.items():
            examples = [encode_conversation(to_messages(r), tokenizer, data.max_length) for r in rows]
            # A reply cut off entirely by max_length leaves nothing to learn from.
            kept = [e for e in examples if any(label != IGNORE_INDEX for label in e["labels"])]
            if len(kept) < len(examples):
                dropped[f"{split}: response truncated away (raise data.max_length)"] = len(examples) - len(
                    kept
                )
            for e in kept:
                e["length"] = len(e["input_ids"])
            datasets[split] = Dataset.from_list(kept)
        collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX, padding=True)
        return PreparedData(datasets=datasets, collator=collator, dropped=dropped)
