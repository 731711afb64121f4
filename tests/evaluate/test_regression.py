"""The regression gate: fails on a drop beyond the tolerance or a rising perplexity, passes within the
tolerance and on improvements, refuses missing metrics, and reads earlier runs' summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from open_autoglm.evaluate.regression import find_regressions, read_baseline_summary


def test_drop_beyond_tolerance_fails() -> None:
    found = find_regressions({"accuracy": 0.871}, {"accuracy": 0.912}, "previous", metrics=["accuracy"])
    assert len(found) == 1
    assert found[0].change == pytest.approx(-0.041)
    assert (
        found[0].describe() == "accuracy fell from 0.912 to 0.871 (-0.041, tolerance 0.010) against previous"
    )


def test_rising_perplexity_fails_and_falling_passes() -> None:
    found = find_regressions({"perplexity": 12.0}, {"perplexity": 10.0}, "pretrained", metrics=["perplexity"])
    assert [r.metric for r in found] == ["perplexity"]
    assert found[0].describe().startswith("perplexity rose from 10.000 to 12.000 (+2.000")
    assert not find_regressions(
        {"perplexity": 8.0}, {"perplexity": 10.0}, "pretrained", metrics=["perplexity"]
    )


def test_drop_within_tolerance_and_improvement_pass() -> None:
    baseline = {"accuracy": 0.912, "f1_macro": 0.90}
    assert not find_regressions(
        {"accuracy": 0.905, "f1_macro": 0.95}, baseline, "previous", metrics=list(baseline)
    )
    # a drop of exactly the tolerance is not "more than" it, despite 0.912 - 0.902 rounding above 0.01
    assert not find_regressions({"accuracy": 0.902}, baseline, "previous", metrics=["accuracy"])


def test_only_gated_metrics_count() -> None:
    current, baseline = {"accuracy": 0.5, "f1_macro": 0.9}, {"accuracy": 0.9, "f1_macro": 0.9}
    assert not find_regressions(current, baseline, "previous", metrics=["f1_macro"])


def test_nan_current_value_fails() -> None:
    found = find_regressions(
        {"perplexity": float("nan")}, {"perplexity": 10.0}, "previous", metrics=["perplexity"]
    )
    assert found[0].describe() == "perplexity is not a number (was 10.000) against previous"


def test_missing_metric_is_an_error_on_either_side() -> None:
    with pytest.raises(ValueError, match=r"baseline 'previous' has no f1_macro .*accuracy, loss"):
        find_regressions({"f1_macro": 0.9}, {"accuracy": 0.9, "loss": 0.3}, "previous", metrics=["f1_macro"])
    with pytest.raises(ValueError, match=r"this evaluation has no bleu .*rouge_l"):
        find_regressions({"rouge_l": 0.4}, {"bleu": 20.0}, "previous", metrics=["bleu"])


def test_relative_tolerance_scales_with_the_baseline() -> None:
    baseline = {"perplexity": 100.0}
    # +4 is within 5% of 100 (but far beyond an absolute 0.05) ...
    assert not find_regressions(
        {"perplexity": 104.0}, baseline, "previous", metrics=["perplexity"], tolerance=0.05, relative=True
    )
    assert find_regressions(
        {"perplexity": 104.0}, baseline, "previous", metrics=["perplexity"], tolerance=0.05
    )
    # ... +6 is not
    found = find_regressions(
        {"perplexity": 106.0}, baseline, "previous", metrics=["perplexity"], tolerance=0.05, relative=True
    )
    assert found[0].describe() == (
        "perplexity rose from 100.000 to 106.000 (+6.000, tolerance 5.0% of 100.000) against previous"
    )


def _summary(tmp_path: Path, best: dict) -> Path:
    path = tmp_path / "summary.json"
    path.write_text(
        json.dumps({"task": "classification", "metric": "accuracy", "best": best}), encoding="utf-8"
    )
    return path


def test_baseline_summary_prefers_test_metrics(tmp_path: Path) -> None:
    best = {
        "metrics": {"accuracy": 0.8},
        "validation": {"accuracy": 0.85},
        "test": {"accuracy": 0.82, "loss": 0.4},
    }
    assert read_baseline_summary(_summary(tmp_path, best)) == {"accuracy": 0.82, "loss": 0.4}
    best = {"metrics": {"accuracy": 0.8, "epoch": None}, "validation": {"accuracy": 0.85}, "test": None}
    assert read_baseline_summary(_summary(tmp_path, best)) == {"accuracy": 0.8}


def test_baseline_summary_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_baseline_summary(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json: not a run summary .*not valid JSON"):
        read_baseline_summary(broken)
    with pytest.raises(ValueError, match="summary.json has no metrics"):
        read_baseline_summary(_summary(tmp_path, {"metrics": {}, "test": None}))
