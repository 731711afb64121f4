"""`autoglm export` on a tiny LoRA classifier: merged, ONNX fp32 equal to PyTorch, INT8 variants valid, the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import load_run_data
from export_fixtures import trained_lora_fixture  # noqa: F401  (the trained_lora fixture)

from open_autoglm.cli import main
from open_autoglm.export.compare import onnx_logits, torch_logits
from open_autoglm.export.job import ExportOptions, run_export
from open_autoglm.models import load_finetuned

FIELDS = {
    "name",
    "format",
    "path",
    "size_mb",
    "latency_ms_p50_b1",
    "latency_ms_p95_b1",
    "latency_ms_p50_b32",
    "latency_ms_p95_b32",
    "throughput_per_s",
    "accuracy",
    "quality_drop",
    "within_tolerance",
}
VARIANTS = ["fp32-pytorch", "int8-dynamic-pytorch", "fp32-onnx", "int8-dynamic-onnx", "int8-static-onnx"]


@pytest.fixture(scope="module")
def exported(trained_lora):
    report = run_export(trained_lora, ExportOptions(model=trained_lora.run_dir / "model", latency_rows=5))
    return trained_lora, report


def test_report_has_every_variant_with_every_field(exported) -> None:
    config, report = exported
    out = config.run_dir / "export"
    assert json.loads((out / "export_report.json").read_text()) == report
    assert report["task"] == "classification" and report["metric"] == "accuracy"
    assert report["tolerance"] == 0.01
    assert [v["name"] for v in report["variants"]] == VARIANTS
    for row in report["variants"]:
        assert set(row) >= FIELDS, row["name"]
        assert row["size_mb"] > 0 and row["throughput_per_s"] > 0
        assert 0 < row["latency_ms_p50_b1"] <= row["latency_ms_p95_b1"]
        assert 0 < row["latency_ms_p50_b32"] <= row["latency_ms_p95_b32"]
        assert row["within_tolerance"] == (row["quality_drop"] <= 0.01)
    reference, *_ = report["variants"]
    assert reference["quality_drop"] == 0 and reference["within_tolerance"]
    assert report["best"] in {v["name"] for v in report["variants"] if v["within_tolerance"]}
    for name in ("merged/model.safetensors", "model.onnx", "model.int8.onnx", "model.int8-static.onnx"):
        assert (out / name).is_file(), name
    by_name = {v["name"]: v for v in report["variants"]}
    assert by_name["int8-dynamic-onnx"]["size_mb"] < by_name["fp32-onnx"]["size_mb"]


def test_onnx_fp32_logits_match_pytorch_and_int8_predicts_valid_labels(exported) -> None:
    config, _ = exported
    out = config.run_dir / "export"
    model, tokenizer, meta = load_finetuned(out / "merged")
    texts = [r["text"] for r in load_run_data(config).splits["test"]]
    expected = torch_logits(model, tokenizer, 24)(texts)
    np.testing.assert_allclose(
        onnx_logits(out / "model.onnx", tokenizer, 24)(texts), expected, atol=1e-4, rtol=0
    )
    for name in ("model.int8.onnx", "model.int8-static.onnx"):
        logits = onnx_logits(out / name, tokenizer, 24)(texts)
        assert logits.shape == expected.shape and np.isfinite(logits).all()
        predicted = logits.argmax(-1)
        assert set(predicted.tolist()) <= set(range(len(meta["labels"])))
        # Quantized, the tiny model still mostly agrees with its fp32 self.
        assert (predicted == expected.argmax(-1)).mean() > 0.7, name


def test_a_variant_beyond_the_tolerance_is_flagged() -> None:
    from open_autoglm.export.compare import build_report

    rows = [
        {"name": "a", "accuracy": 0.9, "latency_ms_p50_b1": 5.0},
        {"name": "b", "accuracy": 0.85, "latency_ms_p50_b1": 1.0},
        {"name": "c", "accuracy": 0.895, "latency_ms_p50_b1": 2.0},
    ]
    report = build_report("classification", "accuracy", 0.01, rows)
    assert [r["within_tolerance"] for r in report["variants"]] == [True, False, True]
    assert report["best"] == "c"


def test_cli_exports_only_what_is_asked(trained_lora, tmp_path) -> None:
    config = trained_lora
    model = str(config.run_dir / "model")
    args = [
        "export",
        "-c",
        str(config.run_dir / "config.yaml"),
        "--model",
        model,
        "--out",
        str(tmp_path / "cli"),
    ]
    assert (
        main([*args, "-q", "--merge", "--quantize", "dynamic", "--set", "export.max_quality_drop=0.5"]) == 0
    )
    out = tmp_path / "cli" / "export"
    report = json.loads((out / "export_report.json").read_text())
    assert not (out / "model.onnx").exists()
    assert [v["name"] for v in report["variants"]] == ["fp32-pytorch", "int8-dynamic-pytorch"]
    assert report["tolerance"] == 0.5
    # Static INT8 is ONNX Runtime's: asking for it without --onnx is a clear error.
    assert main([*args, "-q", "--quantize", "static"]) == 1
