"""summary.json of a transfer run: the fine-tuned model's run summary (the contract's shape), plus what each
step measured."""

from __future__ import annotations

from typing import Any

from open_autoglm.config import Config

_STEPS = ("pretrain", "finetune", "control")


def build_transfer_summary(
    config: Config,
    pretrain: dict[str, Any],
    finetune: dict[str, Any],
    control: dict[str, Any],
    second_task: dict[str, Any] | None,
    seconds: float,
) -> dict[str, Any]:
    """Combine the step records (each a `build_summary` of its step) into the run's summary."""
    steps = dict(zip(_STEPS, (pretrain, finetune, control), strict=True))
    metric = finetune["metric"]
    adapted, original = _target(finetune), _target(control)
    summary = finetune | {"task": "transfer", "model": config.model.name}
    summary["compute"] = {
        "train_steps": sum(s["compute"]["train_steps"] for s in steps.values()),
        "train_examples": sum(s["compute"]["train_examples"] for s in steps.values()),
        "seconds": round(seconds, 2),
        "train_seconds": round(sum(s["compute"]["train_seconds"] for s in steps.values()), 2),
    }
    summary["transfer"] = {
        "steps": {name: _step_figures(s) for name, s in steps.items()},
        "domain_perplexity": {
            "before": pretrain["baseline"]["metrics"].get("perplexity"),
            "after": pretrain["best"]["validation"].get("perplexity"),
        },
        "target": {
            "metric": metric,
            "split": "test" if finetune["best"]["test"] else "validation",
            "adapted": adapted,
            "without_adaptation": original,
            "gain": adapted.get(metric, float("nan")) - original.get(metric, float("nan")),
            "majority_accuracy": finetune["baseline"]["metrics"].get("majority_accuracy"),
        },
        "second_task": second_task,
    }
    return summary


def _target(step: dict[str, Any]) -> dict[str, float]:
    """The step's metrics on the target's test split (validation when there is none)."""
    return step["best"]["test"] or step["best"]["validation"]


def _step_figures(step: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": step["model"],
        "method": step["method"],
        "validation": step["best"]["validation"],
        "test": step["best"]["test"],
        "baseline": step["baseline"]["metrics"],
        "train_steps": step["compute"]["train_steps"],
        "seconds": step["compute"]["seconds"],
    }
