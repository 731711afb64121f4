"""Export of the Chinese+English e5 encoder (XLM-R architecture, "query: " prefix) fine-tuned on ChnSentiCorp:
ONNX computes what PyTorch does and dynamic INT8 keeps the accuracy within the tolerance. (Static INT8, whose
calibration is most of an export's time, is checked on MiniLM in test_export_minilm.)"""

from __future__ import annotations

import json

import pytest

from open_autoglm.export.job import ExportOptions, run_export


@pytest.mark.slow
def test_chinese_e5_int8_keeps_chnsenticorp_accuracy_within_tolerance(chinese_e5_run) -> None:
    config, _ = chinese_e5_run
    report = run_export(
        config, ExportOptions(model=config.run_dir / "model", quantize=("dynamic",), latency_rows=10)
    )
    print(json.dumps(report["variants"], indent=1, ensure_ascii=False))
    by_name = {v["name"]: v for v in report["variants"]}
    assert set(by_name) == {"fp32-pytorch", "int8-dynamic-pytorch", "fp32-onnx", "int8-dynamic-onnx"}
    reference = by_name["fp32-pytorch"]
    assert reference["accuracy"] > 0.75  # it learned the task
    assert by_name["fp32-onnx"]["accuracy"] == pytest.approx(reference["accuracy"], abs=1e-9)
    assert report["onnx_fused_operators"].get("Attention", 0) > 0  # ORT fused XLM-R's attention
    assert by_name["int8-dynamic-onnx"]["within_tolerance"], by_name["int8-dynamic-onnx"]["quality_drop"]
    assert by_name["int8-dynamic-onnx"]["size_mb"] < 0.5 * by_name["fp32-onnx"]["size_mb"]
