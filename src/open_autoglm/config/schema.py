"""The top-level config: one YAML file drives every verb."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from open_autoglm.config.base import StrictModel
from open_autoglm.config.data import DataConfig
from open_autoglm.config.sections import (
    DistillConfig,
    ExportConfig,
    MethodConfig,
    ModelConfig,
    MultitaskConfig,
    SearchConfig,
    TrainConfig,
    TransferConfig,
)

RECIPE_NAMES_OF_OLD = ("multitask", "transfer")


class Config(StrictModel):
    name: str = Field("run", description="run folder name: <output_dir>/<name>/")
    output_dir: Path = Field(Path("runs"), description="where run folders are made")
    task: str = Field(
        "classification",
        description="what is learned: classification, sft, pretrain, or a task a plugin registers "
        "(entry points open_autoglm.tasks)",
    )
    recipe: str = Field(
        "single",
        description="how a train run goes: single (one model, one task), multitask (one backbone, a head per "
        "task in multitask.tasks), transfer (continued pretraining on transfer.domain_text, then fine-tuning)",
    )
    model: ModelConfig = Field(
        default_factory=ModelConfig, description="the pretrained model and where it runs"
    )
    data: DataConfig = Field(default_factory=DataConfig, description="the files and how they are prepared")
    method: MethodConfig = Field(
        default_factory=MethodConfig, description="a name, or a name and its own keys"
    )
    train: TrainConfig = Field(default_factory=TrainConfig, description="one fine-tuning run")
    search: SearchConfig = Field(default_factory=SearchConfig, description="autoglm tune")
    export: ExportConfig = Field(default_factory=ExportConfig, description="autoglm export")
    distill: DistillConfig = Field(default_factory=DistillConfig, description="a teacher for training")
    multitask: MultitaskConfig = Field(default_factory=MultitaskConfig, description="recipe: multitask")
    transfer: TransferConfig = Field(default_factory=TransferConfig, description="recipe: transfer")
    quiet: bool = Field(False, description="no progress bars (CI logs)")

    @field_validator("name")
    @classmethod
    def _safe_folder_name(cls, value: str) -> str:
        if not value or "/" in value or value in {".", ".."}:
            raise ValueError("name must be a plain folder name (no '/')")
        return value

    @model_validator(mode="before")
    @classmethod
    def _recipe_named_as_task(cls, raw: Any) -> Any:
        """Configs (and run folders) from before recipes said `task: multitask` or `task: transfer`; both train
        classifiers, so that reads as the recipe with task classification."""
        if isinstance(raw, dict) and raw.get("task") in RECIPE_NAMES_OF_OLD and "recipe" not in raw:
            return {**raw, "recipe": raw["task"], "task": "classification"}
        return raw

    @field_validator("method", mode="before")
    @classmethod
    def _bare_method_name(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _task_sections(self) -> Config:
        if self.recipe != "single" and self.task != "classification":
            raise ValueError(
                f"recipe: {self.recipe} trains classifiers; task {self.task!r} needs recipe: single"
            )
        if self.recipe == "multitask" and len(self.multitask.tasks) < 2:
            raise ValueError("recipe: multitask needs multitask.tasks with two or more tasks")
        return self

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name
