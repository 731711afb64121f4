"""The teacher: loading it, and refusing a teacher whose logits would mean something else to the student.

The student reads the teacher's token ids, so both must share a vocabulary (and, for classification, the label
set in the same order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.config.sections import ModelConfig
from open_autoglm.models import AUTOGLM_META, load_finetuned, load_model, load_tokenizer, resolve_model_path


def load_teacher(
    path: str | Path, objective: str, *, trust_remote_code: bool = False
) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """A model folder written by train (adapters load on their base), or — for language models only — any
    pretrained model: an untrained classifier head would teach noise. Its own code runs only when the caller's
    `trust_remote_code` (the operator's config) says so."""
    folder = Path(resolve_model_path(str(path)))
    if (folder / AUTOGLM_META).is_file():
        model, tokenizer, meta = load_finetuned(folder, trust_remote_code=trust_remote_code)
        if meta["objective"] != objective:
            raise ValueError(
                f"teacher {folder} was trained for {meta['objective']}, the student trains for {objective}"
            )
        return model, tokenizer
    if objective == "seq_cls":
        raise ValueError(
            f"teacher {folder} has no {AUTOGLM_META}: a classification teacher must be a model trained by "
            "autoglm train on the same labels"
        )
    model_cfg = ModelConfig(trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(str(folder), model_cfg)
    model, _ = load_model(str(folder), model_cfg, objective, pad_token_id=tokenizer.pad_token_id)
    return model.eval(), tokenizer


def check_compatible(
    teacher: nn.Module,
    teacher_tokenizer: PreTrainedTokenizerBase,
    student: nn.Module,
    student_tokenizer: PreTrainedTokenizerBase,
    labels: list[str] | None,
    names: tuple[str, str],
) -> None:
    """Refuse now what would make the KL term meaningless: a different vocabulary (the student's token ids would
    mean other words to the teacher), logits of another width, or classes in another order."""
    teacher_name, student_name = names
    teacher_config: Any = teacher.config
    student_config: Any = student.config
    if teacher_tokenizer.get_vocab() != student_tokenizer.get_vocab():
        raise ValueError(
            f"teacher {teacher_name} and student {student_name} have different vocabularies "
            f"({len(teacher_tokenizer)} and {len(student_tokenizer)} tokens); distillation needs a shared tokenizer"
        )
    if labels is not None:
        teacher_labels = [teacher_config.id2label[i] for i in range(teacher_config.num_labels)]
        if teacher_labels != labels:
            raise ValueError(
                f"teacher {teacher_name} predicts labels {teacher_labels} but student {student_name} "
                f"trains on {labels}; distillation needs the same labels in the same order"
            )
    elif teacher_config.vocab_size != student_config.vocab_size:
        raise ValueError(
            f"teacher {teacher_name} has {teacher_config.vocab_size} output tokens but student {student_name} "
            f"has {student_config.vocab_size}"
        )
