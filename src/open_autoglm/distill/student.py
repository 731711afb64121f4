"""A student made of fewer of the teacher's layers (DistilBERT-style initialisation): evenly spaced layers, the
first and the last kept, with the teacher's embeddings and head. An adapter teacher is merged into its base first.

Works for any model that keeps its blocks in one nn.ModuleList of config.num_hidden_layers entries (BERT-family
encoders, Llama-style decoders, and most others).
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from typing import Any

from torch import nn

from open_autoglm.config import Config
from open_autoglm.config.sections import ModelConfig
from open_autoglm.distill.teacher import load_teacher
from open_autoglm.models import resolve_model_path
from open_autoglm.models.loading import read_meta
from open_autoglm.run_folder import ModelFolder, RunFolder
from open_autoglm.tasks import TASKS

logger = logging.getLogger(__name__)


def with_layer_student(config: Config, build: bool = True) -> Config:
    """The config itself, or — when distill.student_layers is set — one whose model.name is a student built from
    the teacher's layers and saved in <run>/student-init/ (`build=False`: by another process, e.g. rank 0)."""
    distill = config.distill
    if not (distill.teacher and distill.student_layers):
        return config
    out_dir = RunFolder(config.run_dir).student_init
    if build:
        objective = _teacher_objective(config.task, Path(resolve_model_path(distill.teacher)))
        build_layer_student(
            distill.teacher,
            distill.student_layers,
            objective,
            out_dir,
            trust_remote_code=config.model.trust_remote_code,
        )
    return config.model_copy(update={"model": config.model.model_copy(update={"name": str(out_dir)})})


def _teacher_objective(task: str, folder: Path) -> str:
    """What the teacher was trained for (an adapter folder has no config.json to read it from)."""
    if ModelFolder(folder).meta.is_file():
        return read_meta(folder).objective
    return TASKS.get(task)().objective(str(folder), ModelConfig())


def build_layer_student(
    teacher_path: str | Path, layers: int, objective: str, out_dir: Path, *, trust_remote_code: bool = False
) -> None:
    """Save a `layers`-layer copy of the teacher (safetensors, tokenizer, config) to `out_dir`."""
    teacher, tokenizer = load_teacher(teacher_path, objective, trust_remote_code=trust_remote_code)
    student = drop_layers(merged(teacher, teacher_path), layers)
    shutil.rmtree(out_dir, ignore_errors=True)
    student.save_pretrained(str(out_dir), safe_serialization=True)  # type: ignore[operator]
    tokenizer.save_pretrained(str(out_dir))
    logger.info("student: %d of the teacher's layers, saved in %s", layers, out_dir)


def merged(model: nn.Module, source: str | Path) -> nn.Module:
    """A full model: an adapter merged into its base (as export's merge does), a full model as it is."""
    if not hasattr(model, "peft_config"):
        return model
    try:
        return model.merge_and_unload()  # type: ignore[operator]
    except (AttributeError, NotImplementedError, ValueError) as err:
        raise ValueError(
            f"teacher {source}: its adapter cannot be merged into the base model ({err}), so no student can be "
            "built from its layers; only LoRA-family adapters merge (or set model.name to a student)"
        ) from err


def kept_layers(total: int, keep: int) -> list[int]:
    """`keep` evenly spaced indices of `total` layers, the first and (for keep > 1) the last among them."""
    if not 0 < keep < total:
        raise ValueError(
            f"distill.student_layers={keep}: the teacher has {total} layers; keep 1 to {total - 1}"
        )
    if keep == 1:
        return [0]
    return [round(i * (total - 1) / (keep - 1)) for i in range(keep)]


def layer_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The dotted name and the ModuleList of the model's blocks: the one as long as config.num_hidden_layers."""
    total = model.config.num_hidden_layers  # type: ignore[union-attr]
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == total:
            return name, module
    raise ValueError(f"{type(model).__name__}: found no list of its {total} layers to drop layers from")


def drop_layers(model: nn.Module, keep: int) -> nn.Module:
    """A copy of `model` with `keep` of its layers (see kept_layers); the model itself is left as it is."""
    name, layers = layer_list(model)
    indices = kept_layers(len(layers), keep)
    student = copy.deepcopy(model)
    parent_name, _, attribute = name.rpartition(".")
    parent = student.get_submodule(parent_name)
    kept = nn.ModuleList([getattr(parent, attribute)[i] for i in indices])
    for new_index, layer in enumerate(kept):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):  # attention caches are indexed by layer
                module.layer_idx = new_index  # type: ignore[assignment]
    setattr(parent, attribute, kept)
    config: Any = student.config
    for key, value in list(vars(config).items()):
        if isinstance(value, list) and len(value) == len(layers):  # per-layer settings, e.g. layer_types
            setattr(config, key, [value[i] for i in indices])
    config.num_hidden_layers = keep
    return student
