"""The report's plain data, read from real run folders: a small search whose pruner stops trials, a train run,
a hand-made Pareto study, and the optional files (eval.json, resources.jsonl, export_report.json)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import optuna
import pytest
from conftest import write_jsonl
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from plotly.offline import get_plotlyjs

from open_autoglm.cli import report as report_cli
from open_autoglm.config import validate_config
from open_autoglm.data.synthetic import make_topic_rows
from open_autoglm.report import LANGUAGES, load_run, render_report, write_report
from open_autoglm.report.info import MIN_TRIALS_FOR_IMPORTANCE, importance
from open_autoglm.search.job import run_tune
from open_autoglm.train.job import run_train

# Conditional parameters, so that the parallel coordinates and PED-ANOVA meet trials without some of them.
SPACE = {
    "method.name": ["lora", "full"],
    "method.r": {"type": "categorical", "choices": [2, 4], "if": {"method.name": "lora"}},
    "lr_lora": {
        "key": "train.lr",
        "type": "float",
        "low": 1e-5,
        "high": 1e-2,
        "log": True,
        "if": {"method.name": "lora"},
    },
    "lr_full": {
        "key": "train.lr",
        "type": "float",
        "low": 1e-5,
        "high": 1e-3,
        "log": True,
        "if": {"method.name": "full"},
    },
}
# After the default (lr 5e-3), two that learn, then one whose learning rate is too small to move off the
# majority class: the learning-curve pruner stops it once three trials have finished.
SEEDS = [
    {"method.name": "full", "lr_full": 1e-3},
    {"method.name": "lora", "method.r": 4, "lr_lora": 1e-2},
    {"method.name": "lora", "method.r": 2, "lr_lora": 1e-5},
]


def base_config(root: Path, model: Path, **search: object) -> dict:
    data = write_jsonl(root / "topics.jsonl", make_topic_rows(160, seed=3))
    return {
        "name": "study",
        "output_dir": str(root),
        "model": {"name": str(model)},
        "data": {"train": str(data), "max_length": 16, "val_ratio": 0.2, "test_ratio": 0.2},
        "method": {"name": "lora", "r": 4},
        # evaluated every 2 steps (3 times an epoch): curves with points, and a pruner with something to judge
        "train": {"epochs": 2, "lr": 5e-3, "batch_size": 16, "logging_steps": 2, "eval_every": 2},
        "search": search,
        "quiet": True,
    }


def make_tune_run(root: Path, model: Path) -> Path:
    """Five trials (about ten seconds on two cores), the last ones pruned by the learning-curve predictor."""
    search = {"n_trials": 5, "space": SPACE, "seeds": SEEDS, "startup_trials": 2}
    search |= {"pruner": ["curve"], "sampler": "random"}
    config = validate_config(base_config(root, model, **search), "test")
    run_tune(config)
    return config.run_dir


def add_optional_files(run_dir: Path) -> None:
    """What `eval`, the resource monitor and `export` add to a run folder (a killed monitor's torn line too)."""
    comparison = {
        "baseline": 0.25,
        "value": 0.9,
        "delta": 0.65,
        "ci_low": 0.5,
        "ci_high": 0.8,
        "significant": True,
    }
    evaluation = {
        "task": "classification",
        "model": "model",
        "data": "test.jsonl",
        "rows": 29,
        "metric": "accuracy",
        "greater_is_better": True,
        "metrics": {"accuracy": 0.9, "f1_macro": 0.88},
        "confidence": {"accuracy": [0.8, 0.97]},
        "per_class": {
            "sports": {"precision": 1.0, "recall": 0.9, "f1": 0.95, "support": 10},
            "<world>": {"precision": 0.8, "recall": 0.9, "f1": 0.85, "support": 19},
        },
        "confusion_matrix": {"labels": ["sports", "<world>"], "matrix": [[9, 1], [2, 17]]},
        "speed": {"latency_ms_p50": 1.5, "latency_ms_p95": 2.5, "throughput_per_s": 600.0},
        "baselines": [
            {
                "name": "pretrained",
                "source": "tiny-bert",
                "metrics": {"accuracy": 0.25},
                "comparison": {"accuracy": comparison},
            }
        ],
        "regressions": [],
        "passed": True,
    }
    (run_dir / "eval.json").write_text(json.dumps(evaluation), encoding="utf-8")
    gpu = {
        "index": 0,
        "name": "A",
        "utilization_percent": 50.0,
        "memory_used_mb": 900.0,
        "memory_total_mb": 8000,
    }
    samples = [
        {
            "time": 1_700_000_000 + 2 * i,
            "elapsed_s": 2.0 * i,
            "cpu_percent": 90.0 + i,
            "rss_mb": 500.0 + 10 * i,
            "peak_rss_mb": 500.0 + 10 * i,
            "system_memory_percent": 40.0,
            "disk_read_mb": 1.0 * i,
            "disk_write_mb": 2.0 * i,
            "net_sent_mb": 0.0,
            "net_recv_mb": 0.0,
            "gpus": [gpu],
        }
        for i in range(5)
    ]
    lines = "".join(json.dumps(s) + "\n" for s in samples) + '{"time": 17000'  # torn by a kill
    (run_dir / "resources.jsonl").write_text(lines, encoding="utf-8")
    (run_dir / "export").mkdir(exist_ok=True)
    variants = [
        {"name": "fp32", "format": "safetensors", "size_mb": 8.1, "latency_ms_p50": 1.5, "accuracy": 0.9},
        {"name": "int8", "format": "onnx", "size_mb": 2.2, "latency_ms_p50": 0.9, "accuracy": 0.89},
    ]
    (run_dir / "export" / "export_report.json").write_text(
        json.dumps({"variants": variants}), encoding="utf-8"
    )


@pytest.fixture(scope="module")
def tune_run(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Path:
    return make_tune_run(tmp_path_factory.mktemp("report-tune"), tiny_encoder)


def test_a_search_reads_with_every_trial_its_curve_and_why_it_was_pruned(tune_run: Path) -> None:
    info = load_run(tune_run)
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{tune_run / 'study.db'}")
    assert info.kind == "tune" and info.metric == "accuracy" and info.greater_is_better
    assert [t.number for t in info.trials] == [t.number for t in study.trials]
    assert info.trials[0].role == "default" and info.trials[0].state == "complete"

    complete = [t for t in info.trials if t.state == "complete"]
    pruned = [t for t in info.trials if t.state == "pruned"]
    assert len(complete) >= 3 and pruned, [(t.number, t.state) for t in info.trials]
    for trial in complete:
        assert len(trial.curve) == 6 and trial.curve[-1][0] == pytest.approx(2.0)  # 3 evaluations an epoch
        assert trial.loss and trial.value == pytest.approx(study.trials[trial.number].value)
    for trial in pruned:
        assert trial.reason is not None and trial.reason.startswith("learning curve: predicted final")
        assert 0 < len(trial.curve) < 6 and trial.value == trial.curve[-1][1]  # where it stood when stopped

    assert info.study is not None and info.study.target == "accuracy" and info.study.maximize
    assert {p.name for p in info.study.params} == set(SPACE)
    assert {p.name: p.log for p in info.study.params}["lr_lora"] is True
    found = info.study.importance
    assert set(found.values) == set(SPACE)
    assert found.note in (None, "importance_equal")  # three complete trials may not tell them apart
    assert sum(found.values.values()) == pytest.approx(1.0)
    assert info.study.pareto == []  # one objective

    kinds = [row.kind for row in info.comparison]
    assert kinds == ["best_validation", "best_test", "default", "untuned"]
    assert "accuracy" in info.comparison[-1].metrics
    assert info.data is not None and info.data["rows_in"] == 160
    assert info.resources[0]["elapsed_s"] == 0 and info.resources[-1]["rss_mb"] > 0  # the run's monitor
    assert info.evaluation is None and info.export is None and info.notes == []


def test_the_report_is_one_page_with_plotly_inlined_once_in_either_language(tune_run: Path) -> None:
    for lang in LANGUAGES:
        path = write_report(tune_run, lang)
        page = path.read_text(encoding="utf-8")
        assert path == tune_run / "report.html" and f'<html lang="{lang}">' in page
        assert page.count(get_plotlyjs()[:500]) == 1
        assert "<script src" not in page and "<link" not in page  # nothing fetched
        sections = (
            "overview",
            "best",
            "history",
            "importance",
            "curves",
            "parallel",
            "trials",
            "data",
            "resources",
        )
        for section in sections:
            assert f'<section id="{section}">' in page
        for absent in ("pareto", "evaluation", "export"):  # no data for them: left out quietly
            assert f'<section id="{absent}">' not in page
    assert "学习曲线" in page and "已剪枝" in page and "参数重要性" in page


def test_strings_from_the_run_folder_are_escaped(tune_run: Path) -> None:
    info = load_run(tune_run)
    info.name = "<b>run</b>"
    info.trials[-1].reason = "<script>alert(1)</script>"
    info.trials[-1].state = "pruned"
    page = render_report(info)
    assert "<script>alert" not in page and "<b>run</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;run&lt;/b&gt;" in page


def test_eval_resources_and_export_show_up_when_present(tune_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "study"
    shutil.copytree(tune_run, run_dir, ignore=shutil.ignore_patterns("model", "checkpoint"))
    add_optional_files(run_dir)
    info = load_run(run_dir)
    assert info.evaluation is not None and info.evaluation["passed"] is True
    assert [row.kind for row in info.comparison][-2:] == ["evaluated", "eval_baseline"]
    assert (
        info.comparison[-1].source == "pretrained: tiny-bert"
        and info.comparison[-1].metrics["accuracy"] == 0.25
    )
    assert [s["elapsed_s"] for s in info.resources] == [0, 2, 4, 6, 8]  # the torn line skipped
    assert info.export is not None and [v["name"] for v in info.export] == ["fp32", "int8"]

    page = write_report(run_dir).read_text(encoding="utf-8")
    for section in ("evaluation", "resources", "export"):
        assert f'<section id="{section}">' in page
    for figure in ("fig-confusion", "fig-memory", "fig-cpu", "fig-io"):
        assert f'id="{figure}"' in page
    assert "GPU 0 memory" in page and "<td>int8</td>" in page and "&lt;world&gt;" in page


def test_a_train_run_reports_without_a_study_through_the_cli(tmp_path: Path, tiny_encoder: Path) -> None:
    raw = base_config(tmp_path, tiny_encoder)
    del raw["search"]
    config = validate_config(raw, "test")
    run_train(config)

    parser = argparse.ArgumentParser()
    report_cli.add_parser(parser.add_subparsers(dest="verb"), "report")
    args = parser.parse_args(["report", str(config.run_dir), "--lang", "zh"])
    assert report_cli.run(args) == 0

    info = load_run(config.run_dir)
    assert info.kind == "train" and info.study is None
    assert len(info.trials) == 1 and info.trials[0].role == "train" and len(info.trials[0].curve) == 6
    assert info.trials[0].params["method.name"] == "lora"
    assert [row.kind for row in info.comparison] == ["best_validation", "best_test", "untuned"]
    page = (config.run_dir / "report.html").read_text(encoding="utf-8")
    assert '<html lang="zh">' in page
    for section in ("overview", "best", "curves", "data", "resources"):
        assert f'<section id="{section}">' in page
    for absent in ("history", "importance", "parallel", "trials", "pareto"):
        assert f'<section id="{absent}">' not in page


def test_a_pareto_study_has_its_front(tmp_path: Path) -> None:
    run_dir = tmp_path / "pareto"
    run_dir.mkdir()
    config = {"name": "pareto", "search": {"objectives": ["quality", "params"], "mode": "pareto"}}
    (run_dir / "config.yaml").write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    (run_dir / "summary.json").write_text(json.dumps({"metric": "accuracy", "greater_is_better": True}))
    study = optuna.create_study(
        study_name="pareto", storage=f"sqlite:///{run_dir / 'study.db'}", directions=["maximize", "minimize"]
    )
    study.set_user_attr("objectives", ["quality", "params"])
    dist = {"lr": FloatDistribution(1e-4, 1e-2, log=True), "dropout": FloatDistribution(0.0, 0.5)}
    points = [(0.9, 1000.0), (0.8, 100.0), (0.7, 500.0), (0.95, 5000.0)]  # (0.7, 500) is dominated
    for i, values in enumerate(points):
        params = {"lr": 1e-3 * (i + 1), "dropout": 0.1 * i}
        study.add_trial(create_trial(params=params, distributions=dist, values=list(values)))
    study.add_trial(
        create_trial(params={"lr": 1e-4}, distributions={"lr": dist["lr"]}, state=TrialState.PRUNED)
    )

    info = load_run(run_dir)
    assert info.study is not None and info.study.directions == ["maximize", "minimize"]
    assert info.study.pareto == [0, 1, 3]
    assert [t.value for t in info.trials] == [0.9, 0.8, 0.7, 0.95, None]  # quality, the history's target
    assert set(info.study.importance.values) == {"lr", "dropout"}
    page = render_report(info, "en")
    assert 'id="fig-pareto"' in page and 'id="fig-parallel"' in page and 'id="fig-history"' in page


def _study(params: list[dict[str, float]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for i, p in enumerate(params):
        dist = {name: FloatDistribution(0.0, 10.0) for name in p}
        study.add_trial(create_trial(params=p, distributions=dist, value=float(i % 3)))
    return study


def test_importance_says_why_when_it_cannot_be_computed() -> None:
    too_few = importance(_study([{"x": 1.0, "y": 2.0}] * (MIN_TRIALS_FOR_IMPORTANCE - 1)))
    assert too_few.values == {} and too_few.note == "importance_too_few"
    assert too_few.note_args == {"n": MIN_TRIALS_FOR_IMPORTANCE - 1, "need": MIN_TRIALS_FOR_IMPORTANCE}
    one = importance(_study([{"x": float(i)} for i in range(6)]))
    assert one.values == {} and one.note == "importance_one_param" and one.note_args == {"names": "x"}
    two = importance(_study([{"x": float(i), "y": float(i % 2)} for i in range(8)]))
    assert set(two.values) == {"x", "y"} and sum(two.values.values()) == pytest.approx(1.0)


def test_a_folder_without_config_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no config.yaml"):
        load_run(tmp_path)


def test_unreadable_files_are_named_in_the_report_not_a_traceback(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "trials" / "0").mkdir(parents=True)
    (run_dir / "data").mkdir()
    (run_dir / "export").mkdir()
    (run_dir / "config.yaml").write_text(
        "name: run\ntask: classification\nmodel:\n  name: tiny\n", encoding="utf-8"
    )
    whole = {"metric": "accuracy", "best": {"validation": {"accuracy": 0.9}}, "trials": {"complete": 1}}
    (run_dir / "summary.json").write_text(json.dumps(whole, indent=2)[:40], encoding="utf-8")  # truncated
    rows = [{"step": 2, "epoch": 1.0, "split": "validation", "name": "accuracy", "value": 0.5}]
    rows.append({"step": 4, "epoch": "two", "split": "validation", "name": "accuracy", "value": 0.7})
    lines = json.dumps(rows[0]) + "\n" + '{"step": 3, "epo\n' + json.dumps(rows[1]) + "\n"
    (run_dir / "trials" / "0" / "metrics.jsonl").write_text(lines, encoding="utf-8")
    # eval.json of another version: metrics as a list, per-class scores as plain numbers
    evaluation = {"metrics": [0.9], "baselines": {"pretrained": 0.5}, "per_class": {"a": 0.5}}
    (run_dir / "eval.json").write_text(json.dumps(evaluation), encoding="utf-8")
    (run_dir / "data" / "data_report.json").write_text('["not", "an", "object"]', encoding="utf-8")
    (run_dir / "export" / "export_report.json").write_bytes(b"\xff\xfe\x00binary")

    info = load_run(run_dir)

    problems = info.unreadable
    assert "not valid JSON at line 4" in problems["summary.json"]
    assert "line 2 is not a JSON object" in problems["trials/0/metrics.jsonl"]
    assert "metrics is a list, not an object" in problems["eval.json"]
    assert "a list, not an object" in problems["data/data_report.json"]
    assert "not UTF-8" in problems["export/export_report.json"]
    assert info.summary is None and info.data is None and info.export is None
    assert info.model == "tiny" and info.trials[0].curve == [(1.0, 0.5)]  # what could be read still is
    page = render_report(info, "en")
    assert '<section id="unreadable">' in page
    assert page.index('id="unreadable"') < page.index('id="overview"')
    for name in problems:
        assert f"<td>{name}</td>" in page
    assert "the Evaluation section could not be drawn from it: AttributeError" in page  # per_class numbers


def test_a_damaged_config_and_a_torn_metrics_line_still_give_a_report(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "trials" / "0").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("name: run\nmodel: [unclosed\n", encoding="utf-8")
    (run_dir / "trials" / "0" / "metrics.jsonl").write_text('{"step": 1, "epoch": 1, "spl', encoding="utf-8")
    page = write_report(run_dir).read_text(encoding="utf-8")
    info = load_run(run_dir)
    assert info.unreadable["config.yaml"].startswith("not valid YAML at line")
    assert "line 1 is not a JSON object" in info.unreadable["trials/0/metrics.jsonl"]
    assert "<td>config.yaml</td>" in page
    previous = page
    (run_dir / "config.yaml").write_text("- a list\n- not a mapping\n", encoding="utf-8")
    assert "a list, not an object" in load_run(run_dir).unreadable["config.yaml"]
    assert write_report(run_dir).read_text(encoding="utf-8") != previous
