"""Supervised fine-tuning of a causal LM: the loss is on the assistant's tokens only.

The conversation is rendered with the tokenizer's own chat template (SmolLM2's ChatML, say). A tokenizer without
one (a base model such as gemma3-270m) gets `DEFAULT_CHAT_TEMPLATE`, the plain "### Instruction / ### Response"
layout, which is saved with the fine-tuned model's tokenizer so that serving renders prompts the same way. The
rendered text is cut into segments, each marked trainable (an assistant's reply and its end-of-turn token) or not
(system, user, template scaffolding such as the newline after the end of turn); untrainable tokens get -100.

Generation must stop where a reply ends: at the template's end-of-turn token (`<|im_end|>`), which need not be the
tokenizer's end of sequence. `stop_at_end_of_turn` adds it to the model's generation config, which is saved with
the model, so eval, serve and the search's generation metrics all stop there.
"""

from __future__ import annotations

from typing import Any, ClassVar

from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from open_autoglm.config.data import DataConfig
from open_autoglm.config.sections import ModelConfig, TrainConfig
from open_autoglm.tasks.base import TASKS, BaseTask, PreparedData

IGNORE_INDEX = -100
DEFAULT_CHAT_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}### Instruction:\n{{ message['content'] }}\n\n### Response:\n"
    "{% else %}{{ message['content'] }}{{ eos_token }}\n\n{% endif %}"
    "{% endfor %}"
)
_REPLY = "\u2063reply\u2063"  # a stand-in reply no template changes, to find what follows a reply


def to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """A canonical SFT row (prompt/response or messages) as a chat."""
    if "messages" in row:
        return list(row["messages"])
    messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    return messages + [
        {"role": "user", "content": row["prompt"]},
        {"role": "assistant", "content": row["response"]},
    ]


def ensure_chat_template(tokenizer: PreTrainedTokenizerBase) -> None:
    """Give a tokenizer without a chat template the default one (it is saved with the fine-tuned model)."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE


def _render(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], generation_prompt: bool
) -> str:
    return str(
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    )


def end_of_turn(tokenizer: PreTrainedTokenizerBase) -> tuple[str | None, str]:
    """(the end-of-turn token's text, the scaffolding after it) of the chat template: for ChatML
    ("<|im_end|>", "\n"). The end of turn is the first special token after a reply; None when there is none."""
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _REPLY}]
    after = _render(tokenizer, chat, generation_prompt=False).split(_REPLY, 1)[1]
    specials = sorted(
        {t for t in tokenizer.all_special_tokens + list(tokenizer.get_added_vocab()) if t and t in after},
        key=after.index,
    )
    if not specials:
        return None, after
    token = specials[0]
    return token, after[after.index(token) + len(token) :]


def stop_at_end_of_turn(model: Any, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Make generation stop at the chat template's end-of-turn token as well as at end of sequence; returns the
    stop ids now in the model's generation config."""
    token, _ = end_of_turn(tokenizer)
    config = model.generation_config
    ids = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    ids += [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(token) if token else None]
    config.eos_token_id = sorted({int(i) for i in ids if i is not None})
    return list(config.eos_token_id)


def segments(messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase) -> list[tuple[str, bool]]:
    """The conversation as (text, trainable) pieces whose concatenation is the full rendered text: each reply
    with its end-of-turn token trainable, everything else not."""
    ensure_chat_template(tokenizer)
    _, tail = end_of_turn(tokenizer)
    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], generation_prompt=True)
        after = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if not (before.startswith(done) and after.startswith(before)):
            raise ValueError("the tokenizer's chat template does not render conversations incrementally")
        reply = after[len(before) :]
        cut = len(reply) - len(tail) if tail and reply.endswith(tail) else len(reply)
        pieces += [(before[len(done) :], False), (reply[:cut], True), (reply[cut:], False)]
        done = after
    return [(text, trainable) for text, trainable in pieces if text]


def encode_conversation(
    messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> dict[str, Any]:
    input_ids: list[int] = []
    labels: list[int] = []
    for text, trainable in segments(messages, tokenizer):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        labels += ids if trainable else [IGNORE_INDEX] * len(ids)
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def sft_collator(tokenizer: PreTrainedTokenizerBase, packing: bool, max_length: int) -> Any:
    """Batches of SFT examples: packed into rows of at most `max_length` tokens, or padded to the longest."""
    if packing:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return PackedCollator(int(pad or 0), max_length)
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX, padding=True)


class PackedCollator:
    """A batch's examples packed first-fit-decreasing into rows of at most `block` tokens, each example with
    position ids from 0 and its first label ignored, the rows' tail padded as one more such segment. No
    attention mask is passed, so transformers builds a block-diagonal causal mask from the positions (its mask
    functions serve eager, SDPA and flex attention; FlashAttention-2 reads the positions): no example sees
    another, and a row's attention costs at most block² — one row per batch would cost the whole batch squared.

    transformers' DataCollatorWithFlattening puts the whole batch in one row, which only pays off with
    FlashAttention's variable-length kernel; rows of a block keep eager and SDPA (the CPU) as fast as padding.
    """

    def __init__(self, pad_token_id: int, block: int) -> None:
        self.pad_token_id, self.block = pad_token_id, block

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        rows: list[list[dict[str, Any]]] = []
        room: list[int] = []
        for feature in sorted(features, key=lambda f: -len(f["input_ids"])):
            n = len(feature["input_ids"])
            fits = next((r for r, free in enumerate(room) if n <= free), None)
            if fits is None:
                rows.append([feature])
                room.append(self.block - n)
            else:
                rows[fits].append(feature)
                room[fits] -= n
        width = max(self.block - free for free in room)
        columns: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
        for row, free in zip(rows, room, strict=True):
            ids: list[int] = []
            labels: list[int] = []
            positions: list[int] = []
            for f in row:
                ids += list(f["input_ids"])
                labels += [IGNORE_INDEX, *list(f["labels"])[1:]]
                positions += range(len(f["input_ids"]))
            tail = width - (self.block - free)
            columns["input_ids"].append(ids + [self.pad_token_id] * tail)
            columns["labels"].append(labels + [IGNORE_INDEX] * tail)
            columns["position_ids"].append(positions + list(range(tail)))
        batch: dict[str, Any] = {k: torch.tensor(v, dtype=torch.long) for k, v in columns.items()}
        # With a KV cache transformers builds a plain causal mask, and packed examples would see each other (the
        # Trainer turns the cache off; other callers may not).
        batch["use_cache"] = False
        return batch


@TASKS.register
class SftTask(BaseTask):
    name: ClassVar[str] = "sft"
    kind: ClassVar[str] = "sft"
    default_model: ClassVar[str] = "smollm2"
    metric: ClassVar[str] = "perplexity"
    greater_is_better: ClassVar[bool] = False
    evals_per_epoch: ClassVar[int] = 4

    def objective(self, model_path: str, model_cfg: ModelConfig) -> str:
        return "causal_lm"

    def search_metrics(self, train: TrainConfig) -> dict[str, bool]:
        """The loss, or a generation metric of greedy replies (evaluate/metrics.py), which fit scores on a
        fixed validation sample when search.metric names one."""
        return {"perplexity": False, "loss": False, "rouge_l": True, "bleu": True, "exact_match": True}

    def head_names(self, objective: str) -> tuple[str, ...]:
        return ("lm_head",)

    def configure_model(self, model: Any, tokenizer: PreTrainedTokenizerBase) -> None:
        ensure_chat_template(tokenizer)
        stop_at_end_of_turn(model, tokenizer)

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
        collator = sft_collator(tokenizer, train.packing, data.max_length)
        return PreparedData(datasets=datasets, collator=collator, dropped=dropped)
