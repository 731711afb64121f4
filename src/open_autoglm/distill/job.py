"""`autoglm distill`: train a student with the teacher's soft targets, then compare the two on the test split.

teacher → (student from the teacher's layers) → train with distillation → score teacher and student on the same
rows → distill_report.json, also in summary.json under "distill".
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from open_autoglm.atomic import write_json
from open_autoglm.config import Config
from open_autoglm.data.request import DataRequest
from open_autoglm.distill.report import LATENCY_EXAMPLES, ModelMeasure, as_rows, comparison, measure
from open_autoglm.distill.teacher import load_teacher
from open_autoglm.evaluate.rows import evaluation_rows
from open_autoglm.evaluate.scoring import ScoringOptions
from open_autoglm.models import choose_placement, load_finetuned
from open_autoglm.run_folder import RunFolder, RunSummary, write_summary
from open_autoglm.tasks import TASKS
from open_autoglm.train.job import run_train

logger = logging.getLogger(__name__)


def run_distill(config: Config, teacher: str | Path | None = None) -> dict[str, Any]:
    """Distil `teacher` (default: distill.teacher) into the config's student; return the report."""
    if teacher is not None:
        config = config.model_copy(
            update={"distill": config.distill.model_copy(update={"teacher": str(teacher)})}
        )
    if not config.distill.teacher:
        raise ValueError("distillation needs a teacher: pass --teacher PATH or set distill.teacher")
    summary = RunSummary.from_json(run_train(config))
    folder = RunFolder(config.run_dir)
    student_dir = folder.model

    rows = evaluation_rows(DataRequest.of(config), folder.data, None).rows
    student, tokenizer, meta = load_finetuned(student_dir, trust_remote_code=config.model.trust_remote_code)
    options = ScoringOptions(
        batch_size=config.train.eval_batch_size or 2 * config.train.batch_size,
        max_length=meta["max_length"],
        text_prefix=meta.get("text_prefix", ""),
        latency_examples=min(len(rows), LATENCY_EXAMPLES),
        labels=meta.get("labels"),
        objective=meta["objective"],
    )
    device = choose_placement(config.model.device, config.model.precision).device
    measured = measure(
        "student", student_dir, student.to(device), tokenizer, TASKS.get(config.task).kind, rows, options
    )
    del student  # one model in memory at a time
    teacher_model, teacher_tokenizer = load_teacher(
        config.distill.teacher, meta["objective"], trust_remote_code=config.model.trust_remote_code
    )
    teacher_measured = measure(
        "teacher",
        config.distill.teacher,
        teacher_model.to(device).eval(),
        teacher_tokenizer,
        TASKS.get(config.task).kind,
        rows,
        options,
    )
    report = build_report(config, summary, teacher_measured, measured, len(rows))
    write_json(folder.distill_report, report)
    summary.sections["distill"] = report
    write_summary(folder.summary, summary)
    return report


def build_report(
    config: Config, summary: RunSummary, teacher: ModelMeasure, student: ModelMeasure, rows: int
) -> dict[str, Any]:
    task = TASKS.get(config.task)
    return {
        "task": config.task,
        "metric": task.metric,
        "greater_is_better": task.greater_is_better,
        "rows": rows,
        "models": as_rows(teacher, student),
        "student_vs_teacher": comparison(teacher, student, task.metric),
        "settings": config.distill.model_dump(mode="json") | {"student": summary.model},
        "train_steps": summary.compute["train_steps"],
    }
