"""The top-level config: one YAML file drives every verb."""

from __future__ import annotations

from pathlib import Path

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
    TaskName,
    TrainConfig,
    TransferConfig,
)


class Config(StrictModel):
    name: str = Field("run", description="run folder name: <output_dir>/<name>/")
    output_dir: Path = Field(Path("runs"), description="where run folders are made")
    task: TaskName = "classification"
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    multitask: MultitaskConfig = Field(default_factory=MultitaskConfig)
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    quiet: bool = Field(False, description="no progress bars (CI logs)")

    @field_validator("name")
    @classmethod
    def _safe_folder_name(cls, value: str) -> str:
        if not value or "/" in value or value in {".", ".."}:
            raise ValueError("name must be a plain folder name (no '/')")
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _bare_method_name(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _task_sections(self) -> Config:
        if self.task == "multitask" and len(self.multitask.tasks) < 2:
            raise ValueError("task: multitask needs multitask.tasks with two or more tasks")
        if self.task == "transfer" and self.transfer.domain_text is None:
            raise ValueError("task: transfer needs transfer.domain_text (unlabelled domain text)")
        return self

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name
