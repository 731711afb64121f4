"""`autoglm distill` end to end on tiny models: a causal LM distilled into one of its layers, and the CLI on a
classifier."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from open_autoglm.cli import main
from open_autoglm.config import validate_config
from open_autoglm.distill.job import run_distill
from open_autoglm.models import load_finetuned
from open_autoglm.run_folder import DISTILL_REPORT
from open_autoglm.train.job import run_train


def test_causal_lm_distils_into_fewer_layers(tmp_path: Path, tiny_decoder: Path, text_file: Path) -> None:
    config = validate_config(
        {
            "name": "lm",
            "task": "pretrain",
            "output_dir": str(tmp_path),
            "model": {"name": str(tiny_decoder)},
            "data": {"train": str(text_file), "max_length": 32, "val_ratio": 0.1, "test_ratio": 0.1},
            "method": {"name": "full"},
            "train": {"max_steps": 6, "batch_size": 4, "lr": 1e-3, "logging_steps": 1},
            "distill": {"student_layers": 1, "alpha": 0.9, "alpha_end": 0.1, "temperature": 2.0},
            "quiet": True,
        }
    )
    report = run_distill(config, tiny_decoder)  # a pretrained LM teaches as it is

    run_dir = tmp_path / "lm"
    logged = [
        json.loads(line) for line in (run_dir / "trials" / "0" / "metrics.jsonl").read_text().splitlines()
    ]
    losses = [row["value"] for row in logged if (row["split"], row["name"]) == ("train", "loss")]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    teacher, student = report["models"]
    assert (teacher["name"], student["name"]) == ("teacher", "student")
    assert report["metric"] == "perplexity" and math.isfinite(student["metrics"]["perplexity"])
    assert student["parameters"] < teacher["parameters"]
    assert report["student_vs_teacher"]["parameter_ratio"] < 1
    model, _, meta = load_finetuned(run_dir / "model")
    assert model.config.num_hidden_layers == 1
    assert meta["base_model"] == str(run_dir / "student-init")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["distill"] == json.loads((run_dir / DISTILL_REPORT).read_text())


def test_cli_distills_a_trained_classifier(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path, capsys
) -> None:
    raw = {
        "name": "teacher",
        "output_dir": str(tmp_path / "runs"),
        "model": {"name": str(tiny_encoder)},
        "data": {"train": str(topic_file), "max_length": 16, "val_ratio": 0.2, "test_ratio": 0.2},
        "method": {"name": "lora"},
        "train": {"max_steps": 4, "batch_size": 8},
        "quiet": True,
    }
    run_train(validate_config(raw))  # a LoRA teacher: merged before its layers are taken
    teacher = tmp_path / "runs" / "teacher" / "model"
    path = tmp_path / "student.yaml"
    path.write_text(yaml.safe_dump(raw | {"name": "student", "method": {"name": "full"}}))

    code = main(["distill", "-c", str(path), "--teacher", str(teacher), "--student-layers", "1", "-q"])

    assert code == 0
    err = capsys.readouterr().err
    assert "teacher vs student" in err and "accuracy" in err
    report = json.loads((tmp_path / "runs" / "student" / DISTILL_REPORT).read_text())
    assert [m["name"] for m in report["models"]] == ["teacher", "student"]
    assert report["settings"]["student_layers"] == 1
    init = json.loads((tmp_path / "runs" / "student" / "student-init" / "config.json").read_text())
    assert init["num_hidden_layers"] == 1


def test_cli_without_a_teacher_says_so(tmp_path: Path, tiny_encoder: Path, topic_file: Path, capsys) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump({"model": {"name": str(tiny_encoder)}, "data": {"train": str(topic_file)}})
    )
    assert main(["distill", "-c", str(path), "-q"]) == 1
    assert "--teacher" in capsys.readouterr().err
