"""The config sections. Each is small and strict; the top-level `Config` composes them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from open_autoglm.config.base import Seed, StrictModel
from open_autoglm.config.data import DataConfig

TrackerName = Literal["tensorboard", "mlflow", "wandb"]


class ModelConfig(StrictModel):
    name: str = Field(
        "minilm",
        description="alias (minilm, smollm2, gemma3-270m), Hugging Face id, local folder, or a .gguf file "
        "(dequantized once into a cache folder); unset: the task's default (minilm; sft and pretrain: smollm2)",
    )
    gguf_file: str | None = Field(
        None, description="a GGUF file inside the folder model.name names (read as model.name: folder/file)"
    )
    revision: str | None = Field(None, description="hub revision (branch, tag or commit) for a hub id")
    trust_remote_code: bool = Field(
        False, description="run Python code shipped with the model; off unless asked"
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="auto picks CUDA, then MPS, then CPU"
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="auto: bf16 where the device supports it (CUDA or a CPU with AVX512-BF16/AMX), else fp32; "
        "frozen weights under a PEFT method are held in it, weights that train stay fp32",
    )
    quantize: Literal["none", "4bit", "8bit"] = Field(
        "none",
        description="QLoRA: frozen weights in 4 bits (NF4, double quantization) or 8 bits through bitsandbytes, "
        "adapters on top; CUDA and a PEFT method only",
    )

    @model_validator(mode="after")
    def _gguf_inside_folder(self) -> ModelConfig:
        """`gguf_file` joins the folder in `name`, so every later step (and a resumed run) sees one path."""
        if self.gguf_file is not None:
            joined = str(Path(self.name).expanduser() / self.gguf_file)
            object.__setattr__(self, "name", joined)
            object.__setattr__(self, "gguf_file", None)
        return self


class MethodConfig(StrictModel):
    """`name` picks the method; the other keys are that method's own params, validated by its params model."""

    model_config = {"extra": "allow", "validate_assignment": True}
    name: str = Field(
        "lora",
        description="full | freeze | lora | dora | adalora | ia3 | adapter | prefix | prompt | ptuning",
    )

    def extra_params(self) -> dict[str, Any]:
        """The chosen method's own keys, validated by `open_autoglm.methods.method_params`."""
        return dict(self.model_extra or {})


class OptimizerConfig(StrictModel):
    name: Literal["adamw", "adam", "sgd"] = Field("adamw", description="the optimizer (torch.optim)")
    weight_decay: float = Field(0.0, ge=0.0, description="L2 penalty (decoupled for AdamW)")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD only")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam/AdamW only")


class SchedulerConfig(StrictModel):
    name: Literal["linear", "cosine", "constant", "step", "plateau"] = Field(
        "linear", description="how the learning rate changes over the steps, after any warm-up"
    )
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="share of steps with a linear warm-up")
    step_size: PositiveInt = Field(100, description="step: multiply the rate by gamma every step_size steps")
    gamma: float = Field(0.5, gt=0.0, le=1.0, description="step/plateau: decay factor")
    patience: int = Field(1, ge=0, description="plateau: evaluations without improvement before decaying")


class LossConfig(StrictModel):
    name: Literal["ce", "focal"] = Field("ce", description="classification loss: cross-entropy or focal")
    class_weights: Literal["none", "balanced"] | list[float] = Field(
        "none", description="none, balanced (inverse class frequency), or one weight per label"
    )
    focal_gamma: float = Field(2.0, ge=0.0, description="focal: how much easy examples are down-weighted")


def _named(value: Any) -> Any:
    """Let a YAML node be a bare name: `scheduler: cosine` means `scheduler: {name: cosine}`."""
    return {"name": value} if isinstance(value, str) else value


class TrainConfig(StrictModel):
    epochs: float = Field(3.0, gt=0.0, description="passes over the training split (fractions allowed)")
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: by epochs)")
    lr: float = Field(2.0e-4, gt=0.0, lt=1.0, description="peak learning rate")
    batch_size: PositiveInt = Field(16, description="examples per step on each process")
    eval_batch_size: PositiveInt | None = Field(None, description="defaults to 2x batch_size")
    grad_accum: PositiveInt = Field(1, description="gradient accumulation steps")
    max_grad_norm: float = Field(1.0, ge=0.0, description="gradient clipping (0 turns it off)")
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass: less memory, about 30% more time"
    )
    mlm_probability: float = Field(
        0.15, gt=0.0, lt=1.0, description="masked LM (pretrain, transfer): share of tokens masked"
    )
    layer_lr_decay: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="layer-wise learning-rate decay: layer k of L trains at lr * decay^(L - k); the head at lr",
    )
    freeze_layers: int = Field(
        0, ge=0, description="the embeddings and the bottom N transformer layers do not train"
    )
    head_warmup_ratio: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="when the checkpoint lacks modules (a new head), the first share of the steps trains only "
        "the head and those modules (linear probing, then fine-tuning): a random head's first gradients would "
        "distort the pretrained layers",
    )
    group_by_length: bool = Field(True, description="batch examples of similar length (less padding)")
    packing: bool = Field(
        True,
        description="sft: a batch's examples packed into rows of at most data.max_length tokens, positions "
        "restarting per example and no attention across examples (transformers' mask functions and "
        "FlashAttention-2 keep them apart)",
    )
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="a name or a section")
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig, description="a name or a section")
    loss: LossConfig = Field(default_factory=LossConfig, description="a name or a section")
    eval_every: Literal["epoch"] | PositiveInt = Field(
        "epoch", description="evaluate each epoch or every N steps"
    )
    evals_per_epoch: PositiveInt | None = Field(
        None,
        description="with eval_every: epoch, evaluate this many times an epoch, at equal shares of the training "
        "examples (None: the task's own, 4 for sft, 1 otherwise); a search reports each to its pruners",
    )
    save_every: Literal["epoch"] | PositiveInt = Field(
        "epoch", description="checkpoint each epoch or every N steps"
    )
    save_total_limit: PositiveInt = Field(2, description="checkpoints kept (older ones deleted)")
    logging_steps: PositiveInt = Field(10, description="training loss and rate logged every N steps")
    seed: Seed = Field(
        42, description="seeds the data split, the sampling order and the weights' initialisation"
    )
    metrics: list[str] = Field(
        default_factory=list,
        description="classification metrics from plugins (entry points open_autoglm.metrics) reported beside "
        "accuracy and F1, in training and in autoglm eval",
    )
    report_to: list[TrackerName] = Field(
        default_factory=list,
        description="experiment trackers that get metrics and params: tensorboard, mlflow, wandb (off by default)",
    )

    _named_nodes = field_validator("optimizer", "scheduler", "loss", mode="before")(_named)

    @field_validator("report_to")
    @classmethod
    def _trackers_installed(cls, trackers: list[str]) -> list[str]:
        """A tracker whose package is missing would fail at the first log, minutes into training: say it now."""
        for tracker in trackers:
            if importlib.util.find_spec(tracker) is None:
                raise ValueError(f"{tracker} is not installed: pip install {tracker}")
        return list(dict.fromkeys(trackers))

    @model_validator(mode="after")
    def _one_evaluation_schedule(self) -> TrainConfig:
        if self.evals_per_epoch is not None and self.eval_every != "epoch":
            raise ValueError(
                f"train.evals_per_epoch ({self.evals_per_epoch}) needs train.eval_every: epoch, "
                f"not {self.eval_every} steps: give one schedule"
            )
        return self


class SearchConfig(StrictModel):
    n_trials: PositiveInt = Field(20, description="finished trials to reach (complete, pruned or failed)")
    workers: PositiveInt = Field(1, description="worker processes on this machine sharing the study")
    space: Literal["default"] | dict[str, Any] = Field(
        "default",
        description="default (the task's own), or param -> distribution (see the Tune page of the docs)",
    )
    sampler: str = Field(
        "auto",
        description="auto (TPE for one objective, NSGA-II for a Pareto front), tpe, random, gp, cmaes, nsga2, or "
        "a plugin's (entry points open_autoglm.samplers)",
    )
    pruner: list[str] = Field(
        ["asha", "curve"],
        description="a trial stops when any of these says so: median, asha, hyperband, curve, or a plugin's "
        "(entry points open_autoglm.pruners); [none] turns pruning off",
    )
    startup_trials: PositiveInt = Field(
        4, description="trials finished before the sampler models and the pruners judge"
    )
    metric: str | None = Field(
        None,
        description="the metric quality is, reported at every evaluation and judged by the pruners; None: the "
        "task's own (accuracy; perplexity for sft and pretrain). sft: loss, perplexity, or a generation metric — "
        "rouge_l, bleu (character level for Chinese), exact_match — of greedy replies to the first "
        "search.generation_rows validation rows, each stopping at the chat template's end of turn. "
        "classification: accuracy, f1_macro, or a plugin's that train.metrics names. loss and perplexity are "
        "minimised, the others maximised",
    )
    generation_rows: PositiveInt = Field(
        16,
        description="search.metric rouge_l, bleu or exact_match: how many validation rows (the first) are "
        "answered at every evaluation; more rows score more steadily and cost more generation time",
    )
    objectives: list[str] = Field(
        ["quality"],
        description="quality (search.metric), latency (ms per example at batch 1; for a causal LM ms per "
        "generated token of a fixed-length greedy reply), memory, params, size, or a plugin's "
        "(entry points open_autoglm.objectives)",
    )
    mode: Literal["weighted", "pareto"] = Field(
        "weighted", description="several objectives: one weighted score, or a Pareto front"
    )
    weights: dict[str, float] | None = Field(
        None, description="objective -> weight for the weighted score (default: quality only)"
    )
    preferences: dict[str, float] | None = Field(
        None,
        description='pairwise AHP judgements "a/b": how much more a matters than b (1-9); instead of weights',
    )
    seed_default: bool = Field(
        True, description="run the config as written first (never pruned): the default to beat"
    )
    seeds: list[dict[str, Any]] = Field(
        default_factory=list, description="known-good parameter sets to try first"
    )
    patience: PositiveInt | None = Field(
        None, description="stop the study after this many finished trials without improvement"
    )
    terminator: bool = Field(False, description="stop when Optuna's terminator says improvement is unlikely")
    timeout: float | None = Field(None, gt=0, description="stop starting trials after this many seconds")
    storage: str | None = Field(
        None,
        description="None: SQLite in the run folder; journal: a journal file there; or an RDB URL "
        "(postgresql://...) that workers on several machines share",
    )
    heartbeat_seconds: PositiveInt = Field(
        20, description="a running trial's worker tells the storage it is alive this often"
    )
    grace_seconds: PositiveInt = Field(
        90, description="a trial without a heartbeat for this long is failed and run again by another worker"
    )
    refit: bool = Field(False, description="retrain the best configuration on train+validation")
    seed: Seed = Field(42, description="sampler seed")

    _bare_lists = field_validator("pruner", "objectives", mode="before")(
        lambda value: [value] if isinstance(value, str) else value
    )

    @model_validator(mode="after")
    def _check_objectives(self) -> SearchConfig:
        if "quality" not in self.objectives:
            raise ValueError("search.objectives must include quality")
        if len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f"search.objectives has a duplicate: {self.objectives}")
        if self.weights is not None and self.preferences is not None:
            raise ValueError("give search.weights or search.preferences, not both")
        for name in self.weights or {}:
            if name not in self.objectives:
                raise ValueError(f"search.weights.{name}: not one of search.objectives {self.objectives}")
        if self.grace_seconds <= self.heartbeat_seconds:
            raise ValueError(
                f"search.grace_seconds ({self.grace_seconds}) must exceed search.heartbeat_seconds "
                f"({self.heartbeat_seconds}), or live trials would be failed as dead"
            )
        if "none" in self.pruner and len(self.pruner) > 1:
            raise ValueError(f"search.pruner: none cannot be combined with others: {self.pruner}")
        return self


class PruneConfig(StrictModel):
    sparsity: float = Field(
        0.3,
        gt=0.0,
        lt=1.0,
        description="share of attention heads and FFN neurons removed, by lowest importance",
    )
    heads: bool = Field(True, description="prune attention heads")
    ffn: bool = Field(True, description="prune FFN (intermediate) neurons")
    importance_rows: int = Field(
        256, ge=16, description="train rows whose gradients score each head's and neuron's importance"
    )
    recovery_epochs: float = Field(
        1.0, ge=0.0, description="fine-tune the pruned model this many epochs on the train split (0: none)"
    )
    recovery_lr: float = Field(
        5e-5,
        gt=0.0,
        description="learning rate of the recovery fine-tune, which trains the whole pruned model "
        "(not train.lr, often a LoRA rate that would wreck a full fine-tune)",
    )


class ExportConfig(StrictModel):
    max_quality_drop: float = Field(
        0.01, ge=0.0, description="a variant may lose this much of the primary metric (0.01 = 1 point)"
    )
    calibration_rows: int = Field(
        300, ge=100, le=1000, description="train rows that calibrate static INT8 activation ranges"
    )
    opset: int = Field(18, ge=17, description="ONNX opset of the exported model")
    prune: PruneConfig = Field(default_factory=PruneConfig)
    extra: list[str] = Field(
        default_factory=list,
        description="exporters from plugins (entry points open_autoglm.exporters), run on the merged model",
    )
    gguf: list[Literal["f16", "q8_0"]] = Field(
        ["f16", "q8_0"],  # pydantic copies a mutable default for each config
        description="GGUF files (llama.cpp, Ollama) written for a causal LM: export/model-<type>.gguf and a "
        "Modelfile; [] writes none",
    )

    @field_validator("gguf")
    @classmethod
    def _one_file_per_type(cls, types: list[str]) -> list[str]:
        return list(dict.fromkeys(types))


class DistillConfig(StrictModel):
    teacher: str | None = Field(
        None,
        description="the teacher: a model folder written by train/tune (or --teacher); none: no distillation",
    )
    student_layers: PositiveInt | None = Field(
        None,
        description="build the student from this many of the teacher's layers (evenly spaced) instead of model.name",
    )
    alpha: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="weight of the soft (teacher) loss; 1 - alpha weighs the hard-label loss",
    )
    alpha_end: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="alpha at the last step, reached linearly from alpha (none: constant)",
    )
    temperature: float = Field(2.0, gt=0.0, description="softens both logits before the KL term")


class TaskSpec(StrictModel):
    """One task of a multi-task run: its own labelled data and head over the shared backbone."""

    name: str = Field(description="the task's name: its head, its metrics' prefix")
    data: DataConfig = Field(description="the task's data section (train file, fields, splits, cleaning)")
    weight: float = Field(1.0, gt=0.0, description="loss weight under loss_weighting: fixed")


class MultitaskConfig(StrictModel):
    tasks: list[TaskSpec] = Field(
        default_factory=list, description="recipe: multitask: two or more tasks sharing one backbone"
    )
    sampling: Literal["proportional", "temperature", "uniform"] = Field(
        "temperature",
        description="which task the next batch comes from: by size, by size^(1/T), or evenly",
    )
    temperature: float = Field(2.0, ge=1.0, description="sampling: temperature; 1 is proportional")
    loss_weighting: Literal["fixed", "uncertainty", "gradnorm", "pcgrad"] = Field(
        "fixed",
        description="fixed weights, uncertainty weighting (Kendall et al.), GradNorm, or PCGrad",
    )
    gradnorm_alpha: float = Field(1.5, ge=0.0, description="GradNorm: strength of the pull to equal rates")

    @field_validator("tasks")
    @classmethod
    def _unique_names(cls, tasks: list[TaskSpec]) -> list[TaskSpec]:
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"multitask.tasks: task names must be unique, got {names}")
        return tasks


class TransferConfig(StrictModel):
    domain_text: Path | None = Field(
        None,
        description="recipe: transfer: unlabelled domain text (any supported format) for continued pretraining",
    )
    text_field: str = Field("text", description="the domain text's field or column")
    pretrain_epochs: float = Field(1.0, gt=0.0, description="epochs of continued pretraining")
    pretrain_lr: float = Field(5e-5, gt=0.0, lt=1.0, description="learning rate of continued pretraining")
    pretrain_head_warmup: float = Field(
        0.3,
        ge=0.0,
        lt=1.0,
        description="share of the pretraining steps that train only a masked-LM head the checkpoint lacked "
        "(MiniLM and e5 ship without one)",
    )
    max_rows: PositiveInt | None = Field(None, description="use at most this many domain-text rows")
    second_task: DataConfig | None = Field(
        None,
        description="labelled data of another task, scored before and after to show what was kept or lost",
    )
