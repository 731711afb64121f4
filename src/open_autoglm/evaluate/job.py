"""`autoglm eval`: score a trained model, compare it with baselines, and say whether it regressed.

rows → the model scored (metrics, speed) → the pretrained model scored on the same rows (paired bootstrap)
→ an earlier run's summary.json (its value against our interval) → the regression gate → eval.json.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import set_seed

from open_autoglm.atomic import write_json
from open_autoglm.config import Config
from open_autoglm.config.sections import ModelConfig
from open_autoglm.data.request import DataRequest
from open_autoglm.evaluate.bootstrap import confidence_interval, paired_difference
from open_autoglm.evaluate.regression import find_regressions, read_baseline_summary
from open_autoglm.evaluate.rows import evaluation_rows
from open_autoglm.evaluate.scoring import Scored, ScoringOptions, score
from open_autoglm.evaluate.speed import speed_report
from open_autoglm.models import choose_placement, load_finetuned, load_model
from open_autoglm.monitor import PeakMemory, ResourceMonitor
from open_autoglm.run_folder import RunFolder
from open_autoglm.tasks import TASKS
from open_autoglm.versions import versions

logger = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    model: Path
    data: Path | None = None  # None: the run's test split
    baseline_summary: Path | None = None  # an earlier run's summary.json
    pretrained: bool = True  # also score the untuned base model on the same rows
    gate_metrics: tuple[str, ...] = ()  # () = the task's primary metric
    tolerance: float = 0.01
    relative: bool = False  # tolerance as a share of the baseline value
    batch_size: int | None = None
    max_new_tokens: int = 64
    latency_examples: int = 32
    out: Path | None = None  # folder for eval.json (default: the run folder)


def run_eval(config: Config, options: EvalOptions) -> dict[str, Any]:
    started = time.perf_counter()
    out_dir = options.out or config.run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    placement = choose_placement(config.model.device, config.model.precision)
    model, tokenizer, meta = load_finetuned(
        options.model, placement.device, trust_remote_code=config.model.trust_remote_code
    )
    if meta["task"] != config.task:
        raise ValueError(
            f"{options.model} was trained for task {meta['task']!r}, the config says {config.task!r}"
        )
    task = TASKS.get(config.task)
    gate = list(options.gate_metrics) or [task.metric]
    scoring = ScoringOptions(
        batch_size=options.batch_size or config.train.eval_batch_size or 2 * config.train.batch_size,
        max_length=meta.get("max_length", config.data.max_length),
        text_prefix=meta.get("text_prefix", config.data.text_prefix),
        max_new_tokens=options.max_new_tokens,
        latency_examples=options.latency_examples,
        labels=meta.get("labels"),
        objective=meta["objective"],
        extra_metrics=tuple(config.train.metrics),
    )

    with ResourceMonitor(RunFolder(out_dir).eval_resources):
        data = evaluation_rows(DataRequest.of(config), RunFolder(config.run_dir).data, options.data)
        n = len(data.rows)
        logger.info("evaluating %s on %d rows (%s)", options.model, n, data.source)
        with PeakMemory() as peak:
            scored = score(task.kind, model, tokenizer, data.rows, scoring)
        intervals = {
            name: list(confidence_interval(statistic, n, seed=config.train.seed))
            for name, statistic in scored.statistics.items()
        }
        baselines = []
        if options.pretrained:
            del model  # one model in memory at a time
            set_seed(config.train.seed)  # an untrained classifier head is random: the same one every run
            base = _pretrained(meta, tokenizer.pad_token_id, placement.device)
            untuned = score(task.kind, base, tokenizer, data.rows, scoring)
            baselines.append(
                {
                    "name": "pretrained",
                    "source": meta["base_model"],
                    "metrics": untuned.metrics,
                    "comparison": _paired_comparison(scored, untuned, n, config.train.seed),
                }
            )
        if options.baseline_summary is not None:
            previous = read_baseline_summary(options.baseline_summary)
            baselines.append(
                {
                    "name": "previous",
                    "source": str(options.baseline_summary),
                    "metrics": previous,
                    "comparison": _interval_comparison(scored.metrics, intervals, previous),
                }
            )

    regressions = [
        regression
        for baseline in baselines
        for regression in find_regressions(
            scored.metrics,
            baseline["metrics"],
            baseline["name"],
            metrics=gate,
            tolerance=options.tolerance,
            relative=options.relative,
        )
    ]
    result = {
        "task": config.task,
        "model": str(options.model),
        "data": data.source,
        "rows": n,
        "quarantined": data.quarantined,
        "metric": task.metric,
        "greater_is_better": task.greater_is_better,
        "metrics": {name: float(value) for name, value in scored.metrics.items()},
        "confidence": {name: [round(v, 6) for v in pair] for name, pair in intervals.items()},
        **scored.details,
        "speed": speed_report(scored.batched, scored.single, scoring.batch_size, peak.peak_mb),
        "baselines": baselines,
        "gate": {"metrics": gate, "tolerance": options.tolerance, "relative": options.relative},
        "regressions": [vars(r) | {"message": r.describe()} for r in regressions],
        "passed": not regressions,
        "seconds": round(time.perf_counter() - started, 2),
        "versions": versions(),
    }
    write_json(
        RunFolder(out_dir).eval, result
    )  # whole or not at all: a failed eval keeps the earlier eval.json
    return result


def _pretrained(meta: dict[str, Any], pad_token_id: int | None, device: str) -> Any:
    """The base model before fine-tuning, with the same head shape (a fresh one for classification)."""
    model, _ = load_model(
        meta["base_model"],
        ModelConfig(**meta.get("model", {})),
        meta["objective"],
        meta.get("labels"),
        pad_token_id,
    )
    return model.to(device).eval()


def _paired_comparison(current: Scored, base: Scored, n: int, seed: int) -> dict[str, dict[str, Any]]:
    """Both models scored on the same rows: resample rows once for both, so the interval is of the difference."""
    return {
        name: {
            "baseline": base.metrics[name],
            "value": current.metrics[name],
            **paired_difference(current.statistics[name], base.statistics[name], n, seed=seed),
        }
        for name in current.statistics
        if name in base.statistics
    }


def _interval_comparison(
    metrics: dict[str, float], intervals: dict[str, list[float]], previous: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """Only numbers of the earlier run are known: its value is beyond noise when it falls outside our interval."""
    comparison = {}
    for name in sorted(metrics.keys() & previous.keys()):
        value, baseline = metrics[name], previous[name]
        entry: dict[str, Any] = {"baseline": baseline, "value": value, "delta": value - baseline}
        if name in intervals:
            low, high = intervals[name]
            entry |= {
                "ci_low": low - baseline,
                "ci_high": high - baseline,
                "significant": not low <= baseline <= high,
            }
        comparison[name] = entry
    return comparison
