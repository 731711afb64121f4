"""The run folder: every path a job writes or reads, named once, and the two artifacts read back by key.

    <run>/
      config.yaml              the resolved config (what a resume is compared with)
      summary.json             RunSummary: the result, whichever job wrote it
      resources.jsonl          CPU, memory and GPU samples of the whole job
      data/                    the splits as used, data_report.json
      model/                   ModelFolder: weights, tokenizer, autoglm.json (multitask.json for multitask)
      trials/<n>/              TrialFolder: metrics.jsonl, baseline.json, checkpoint/, model/, params.json, ...
                               (a train or multitask run is trial 0)
      study.db (-journal, -wal, -shm) or study.journal, .ask.lock, refit/, worker-<i>.log      tune
      steps/<step>/ (step.json), adapted/                                                     transfer
      student-init/, distill_report.json                                                      distill
      eval.json, resources-eval.jsonl                                                         eval
      export/ (export_report.json)                                                            export
      report.html                                                                             report
      tensorboard/<trial>/     train.report_to: tensorboard
      .run.lock                the job that holds the folder

summary.json and autoglm.json are dataclasses (`RunSummary`, `ModelMeta`) with a format version, written and
read only here: strict on what a loader needs, lenient on the rest (an older file without `format` reads, keys
this version does not know are kept).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from open_autoglm.atomic import write_json

logger = logging.getLogger(__name__)

CONFIG = "config.yaml"
SUMMARY = "summary.json"
RESOURCES = "resources.jsonl"
LOCK = ".run.lock"
DATA_REPORT = "data_report.json"  # inside data/
EVAL = "eval.json"
EVAL_RESOURCES = "resources-eval.jsonl"
EXPORT_REPORT = "export_report.json"  # inside export/
REPORT = "report.html"
DISTILL_REPORT = "distill_report.json"
STUDY_DB = "study.db"
STUDY_JOURNAL = "study.journal"
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")  # SQLite's own files beside study.db
ASK_LOCK = ".ask.lock"
METRICS = "metrics.jsonl"
BASELINE = "baseline.json"
PARAMS = "params.json"
ERROR = "error.txt"
STEP_RECORD = "step.json"  # transfer: a finished step's record
MODEL_META = "autoglm.json"
MULTITASK_META = "multitask.json"


@dataclass(frozen=True)
class TrialFolder:
    """trials/<n>/: one training run (a train run is trial 0; a transfer step is one too)."""

    path: Path

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def baseline(self) -> Path:
        return self.path / BASELINE

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoint"

    @property
    def model(self) -> Path:
        return self.path / "model"

    @property
    def params(self) -> Path:
        return self.path / PARAMS

    @property
    def error(self) -> Path:
        return self.path / ERROR

    @property
    def resources(self) -> Path:
        return self.path / RESOURCES

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def step_record(self) -> Path:
        return self.path / STEP_RECORD


@dataclass(frozen=True)
class ModelFolder:
    """A saved model: weights and tokenizer as transformers writes them, plus our metadata."""

    path: Path

    @property
    def meta(self) -> Path:
        return self.path / MODEL_META

    @property
    def multitask_meta(self) -> Path:
        return self.path / MULTITASK_META


@dataclass(frozen=True)
class RunFolder:
    """<output_dir>/<name>/ of one config (see the module docstring for the layout)."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY

    @property
    def resources(self) -> Path:
        return self.path / RESOURCES

    @property
    def lock(self) -> Path:
        return self.path / LOCK

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def data_report(self) -> Path:
        return self.data / DATA_REPORT

    @property
    def model(self) -> Path:
        return self.path / "model"

    @property
    def trials(self) -> Path:
        return self.path / "trials"

    def trial(self, number: int) -> TrialFolder:
        return TrialFolder(self.trials / str(number))

    def trial_files(self, name: str) -> list[Path]:
        """The file `name` of every trial that has one, in trial folder order."""
        return sorted(self.trials.glob(f"*/{name}"))

    @property
    def study_db(self) -> Path:
        return self.path / STUDY_DB

    @property
    def study_journal(self) -> Path:
        return self.path / STUDY_JOURNAL

    @property
    def ask_lock(self) -> Path:
        return self.path / ASK_LOCK

    @property
    def refit(self) -> Path:
        return self.path / "refit"

    @property
    def tensorboard(self) -> Path:
        """train.report_to: tensorboard, one folder per trial."""
        return self.path / "tensorboard"

    def worker_log(self, index: int | str) -> Path:
        return self.path / f"worker-{index}.log"

    @property
    def steps(self) -> Path:
        return self.path / "steps"

    def step(self, name: str) -> TrialFolder:
        return TrialFolder(self.steps / name)

    @property
    def adapted(self) -> Path:
        return self.path / "adapted"

    @property
    def student_init(self) -> Path:
        return self.path / "student-init"

    @property
    def distill_report(self) -> Path:
        return self.path / DISTILL_REPORT

    @property
    def eval(self) -> Path:
        return self.path / EVAL

    @property
    def eval_resources(self) -> Path:
        return self.path / EVAL_RESOURCES

    @property
    def export(self) -> Path:
        return self.path / "export"

    @property
    def export_report(self) -> Path:
        return self.export / EXPORT_REPORT

    @property
    def report(self) -> Path:
        return self.path / REPORT

    def study_files(self) -> list[Path]:
        """The files a study in this folder lives in: SQLite's database with its side files, or the journal."""
        side = [self.study_db.with_name(STUDY_DB + suffix) for suffix in SQLITE_SIDE_FILES]
        return [self.study_db, *side, self.study_journal]

    def remove_study(self) -> None:
        """Delete the study and what its trials left (trials/, model/), so that a search starts over.

        The data, the config and the locks stay: the next run reuses the splits and holds the folder.
        """
        for path in (*self.study_files(), self.trials, self.model):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def read_json_object(
    path: Path, what: str, fix: str = "", error: type[ValueError] = ValueError
) -> dict[str, Any]:
    """The JSON object in `path`; anything else raises `error` naming the file, that it is not `what` and why.

    `fix` (the way out, e.g. "start afresh with --no-resume") ends the message. A missing file raises
    FileNotFoundError as it is: callers say themselves what its absence means.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except UnicodeDecodeError as err:
        problem = f"not UTF-8 text: bad byte at offset {err.start}"
    except json.JSONDecodeError as err:
        problem = f"not valid JSON at line {err.lineno} column {err.colno}: {err.msg}; truncated or damaged"
    except OSError as err:
        problem = f"cannot be read: {err.strerror or err}"
    else:
        if isinstance(data, dict):
            return data
        problem = f"a JSON {_json_type(data)}, not an object"
    raise error(f"{path}: not {what} ({problem})" + (f"; {fix}" if fix else ""))


def _json_type(value: Any) -> str:
    names = {list: "list", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# summary.json


SUMMARY_FORMAT = 1  # 0: files written before the format was versioned


@dataclass
class RunSummary:
    """summary.json: what a job found, in one shape for train, tune, multitask, transfer and distill.

    Every field may be absent in a file (a killed run's, an older version's), so each has an empty default;
    the jobs fill them all. `sections` holds each job's own keys as they are written: a search's default,
    pareto, refit, pruned and failed; a train run's data and resumed_from; multitask's tasks; transfer's
    transfer; distill's distill.
    """

    task: str | None = None
    metric: str | None = None  # the task's primary metric
    greater_is_better: bool | None = None
    model: str | None = None  # model.name of the config
    method: str | None = None  # the method of a single run (a search's trials each have their own)
    best: dict[str, Any] = field(
        default_factory=dict
    )  # metrics, validation, test, params (+ a search's trial...)
    baseline: dict[str, Any] = field(default_factory=dict)  # metrics: the untuned model's (+ split)
    trials: dict[str, int] = field(default_factory=dict)  # complete, pruned, failed (+ finished)
    compute: dict[str, Any] = field(default_factory=dict)  # train_steps, train_examples, seconds, ...
    parameters: dict[str, int] | None = None  # trainable, total
    placement: dict[str, str] | None = None  # device, precision
    resources: dict[str, Any] | None = None  # the resource monitor's summary
    versions: dict[str, str] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    format: int = SUMMARY_FORMAT  # the version the file was written in (writing always writes this version's)

    @property
    def validation(self) -> dict[str, float]:
        """The best model's validation metrics."""
        return self.best.get("validation") or {}

    @property
    def test(self) -> dict[str, float] | None:
        """The best model's test metrics, None when the run had no test split."""
        return self.best.get("test") or None

    @property
    def untuned(self) -> dict[str, float]:
        """The metrics of the model before training."""
        return self.baseline.get("metrics") or {}

    @property
    def best_trial(self) -> int | None:
        trial = self.best.get("trial")
        return trial if isinstance(trial, int) and not isinstance(trial, bool) else None

    def to_json(self) -> dict[str, Any]:
        """The file's content; optional fields that are None are left out, as the jobs always wrote them."""
        core: dict[str, Any] = {
            "format": SUMMARY_FORMAT,  # what this version writes, whatever the summary was read from
            "task": self.task,
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "method": self.method,
            "model": self.model,
            "best": self.best,
            "baseline": self.baseline,
            "trials": self.trials,
            "compute": self.compute,
            "parameters": self.parameters,
            "placement": self.placement,
        }
        optional = ("method", "parameters", "placement")
        data = {k: v for k, v in core.items() if not (k in optional and v is None)}
        data |= self.sections | {"versions": self.versions}
        return data | ({"resources": self.resources} if self.resources is not None else {})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSummary:
        """A summary from a file's object: values of the wrong type read as absent, unknown keys kept."""
        rest = dict(data)
        get = rest.pop
        summary = cls(
            task=_of(str, get("task", None)),
            metric=_of(str, get("metric", None)),
            greater_is_better=_of(bool, get("greater_is_better", None)),
            model=_of(str, get("model", None)),
            method=_of(str, get("method", None)),
            best=_of(dict, get("best", None)) or {},
            baseline=_of(dict, get("baseline", None)) or {},
            trials=_of(dict, get("trials", None)) or {},
            compute=_of(dict, get("compute", None)) or {},
            parameters=_of(dict, get("parameters", None)),
            placement=_of(dict, get("placement", None)),
            resources=_of(dict, get("resources", None)),
            versions=_of(dict, get("versions", None)) or {},
            format=_format(get("format", 0), SUMMARY_FORMAT, SUMMARY),
        )
        summary.sections = rest
        return summary


def write_summary(path: Path, summary: RunSummary) -> None:
    """Write summary.json atomically (a reader sees the earlier one or the whole new one)."""
    write_json(path, summary.to_json())


def read_summary(path: Path, what: str = "a run summary") -> RunSummary:
    """summary.json; a file that is not a JSON object raises ValueError naming it."""
    return RunSummary.from_json(read_json_object(path, what))


# autoglm.json


META_FORMAT = 1  # 0: files written before the format was versioned


class ModelFolderError(ValueError):
    """A model folder that cannot be loaded as it is; the message names the file and what is wrong."""


@dataclass
class ModelMeta:
    """autoglm.json, beside every saved model: what loading it and feeding it need.

    Optional fields that are None are not written (an older folder's missing key stays missing), except
    `labels`, which a model without labels records as null.
    """

    task: str
    objective: str  # seq_cls | causal_lm | masked_lm
    method: str | None = None
    base_model: str | None = None  # an adapter's base (a hub id or a folder)
    labels: list[str] | None = None
    text_prefix: str | None = None
    max_length: int | None = None
    model: dict[str, Any] | None = None  # the config's model section it was trained with
    licence: str | None = None  # of the base model's weights, where its alias knows it
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # merged_from, pruned, and keys of newer versions
    format: int = META_FORMAT  # the version the file was written in (writing always writes this version's)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": META_FORMAT, "task": self.task, "objective": self.objective}
        for key in ("method", "base_model", "labels", "text_prefix", "max_length", "model", "licence"):
            value = getattr(self, key)
            if value is not None or key == "labels":
                data[key] = value
        return data | self.extra | {"versions": self.versions}

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> ModelMeta:
        """Checked for what loading needs: the task and objective, and the types of what loaders index."""
        missing = [key for key in ("task", "objective") if key not in data]
        if missing:
            written_by = (data.get("versions") or {}).get("open-autoglm", "an unknown version")
            raise ModelFolderError(
                f"{path}: missing key {', '.join(map(repr, missing))} (written by open-autoglm {written_by})"
            )
        for key, kind in (("model", dict), ("labels", list)):
            if data.get(key) is not None and not isinstance(data[key], kind):
                raise ModelFolderError(f"{path}: {key!r} must be a JSON {kind.__name__}, found {data[key]!r}")
        rest = dict(data)
        meta = cls(
            task=str(rest.pop("task")),
            objective=str(rest.pop("objective")),
            method=rest.pop("method", None),
            base_model=rest.pop("base_model", None),
            labels=rest.pop("labels", None),
            text_prefix=rest.pop("text_prefix", None),
            max_length=rest.pop("max_length", None),
            model=rest.pop("model", None),
            licence=rest.pop("licence", None),
            versions=_of(dict, rest.pop("versions", None)) or {},
            format=_format(rest.pop("format", 0), META_FORMAT, str(path)),
        )
        meta.extra = rest
        return meta


def write_model_meta(folder: Path, meta: ModelMeta) -> None:
    """autoglm.json into the model folder `folder`, atomically."""
    write_json(ModelFolder(folder).meta, meta.to_json())


def read_model_meta(folder: Path) -> ModelMeta:
    """autoglm.json of a model folder; a missing, torn or other-layout file is named with what is wrong."""
    meta_file = ModelFolder(Path(folder)).meta
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{folder}: no {MODEL_META}; is this a model folder written by autoglm train?"
        )
    return ModelMeta.from_json(
        read_json_object(meta_file, "model metadata", error=ModelFolderError), meta_file
    )


def _of(kind: type, value: Any) -> Any:
    """`value` when it is a `kind` (a JSON true is no number), else None."""
    if isinstance(value, bool) and kind is not bool:
        return None
    return value if isinstance(value, kind) else None


def _format(value: Any, current: int, where: str) -> int:
    """The file's format version; a newer one is read as far as this version understands it."""
    version = _of(int, value) or 0
    if version > current:
        logger.warning(
            "%s has format %d, newer than this version's %d: reading what it knows", where, version, current
        )
    return version
