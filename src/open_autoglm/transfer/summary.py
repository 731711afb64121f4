"""summary.json of a transfer run: the fine-tuned model's run summary (the contract's shape), plus what each
step measured."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from open_autoglm.config import Config
from open_autoglm.run_folder import RunSummary

_STEPS = ("pretrain", "finetune", "control")


def build_transfer_summary(
    config: Config,
    pretrain: dict[str, Any],
    finetune: dict[str, Any],
    control: dict[str, Any],
    second_task: dict[str, Any] | None,
    seconds: float,
) -> RunSummary:
    """Combine the step records (each a `build_summary` of its step) into the run's summary."""
    steps = {
        name: RunSummary.from_json(record)
        for name, record in zip(_STEPS, (pretrain, finetune, control), strict=True)
    }
    tuned, untuned = steps["finetune"], steps["pretrain"]
    metric = tuned.metric or ""
    adapted, original = _target(tuned), _target(steps["control"])
    compute = {
        "train_steps": sum(s.compute["train_steps"] for s in steps.values()),
        "train_examples": sum(s.compute["train_examples"] for s in steps.values()),
        "seconds": round(seconds, 2),
        "train_seconds": round(sum(s.compute["train_seconds"] for s in steps.values()), 2),
    }
    transfer = {
        "steps": {name: _step_figures(s) for name, s in steps.items()},
        "domain_perplexity": {
            "before": untuned.untuned.get("perplexity"),
            "after": untuned.validation.get("perplexity"),
        },
        "target": {
            "metric": metric,
            "split": "test" if tuned.test else "validation",
            "adapted": adapted,
            "without_adaptation": original,
            "gain": adapted.get(metric, float("nan")) - original.get(metric, float("nan")),
            "majority_accuracy": tuned.untuned.get("majority_accuracy"),
        },
        "second_task": second_task,
    }
    return replace(
        tuned,
        task="transfer",
        model=config.model.name,
        compute=compute,
        sections=tuned.sections | {"transfer": transfer},
    )


def _target(step: RunSummary) -> dict[str, float]:
    """The step's metrics on the target's test split (validation when there is none)."""
    return step.test or step.validation


def _step_figures(step: RunSummary) -> dict[str, Any]:
    return {
        "model": step.model,
        "method": step.method,
        "validation": step.best["validation"],
        "test": step.best["test"],
        "baseline": step.untuned,
        "train_steps": step.compute["train_steps"],
        "seconds": step.compute["seconds"],
    }
