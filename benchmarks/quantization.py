"""Quantization: all-MiniLM-L6-v2 + LoRA fine-tuned on SST-2, PyTorch fp32 against the best INT8 variant that
`autoglm export` picks (the fastest at batch 1 within the quality tolerance), in one process.

The model is trained here from examples/sst2_lora.yaml (2,000 SST-2 rows, 2 epochs; about 2 minutes on 2 cores)
unless --model gives a model folder trained with that config. Every variant is scored on all 872 rows of SST-2's
dev.tsv (the test split here; validation is split from train) and timed by `autoglm export`'s own measure: p50 of
--latency-rows single-text calls (batch 1) and of batches of 32, after untimed warm-up calls.

Side by side, a baseline: plain ONNX Runtime dynamic INT8 of the unfused graph (no transformer optimizer), which is
what a user gets from `torch.onnx.export` + `quantize_dynamic`. Figures: latency_ratio_b1 / _b32 (fp32 PyTorch ms
over best INT8 ms; the target is 4 or more at batch 1), size_ratio (fp32 MB over INT8 MB), accuracy_drop_points
(at most 1), and plain_int8_ratio_b1 for the baseline. Run: `.venv/bin/python benchmarks/quantization.py`
(about 5 minutes on 2 idle cores). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from open_autoglm.config import validate_config
from open_autoglm.data.prepared import load_data
from open_autoglm.data.request import DataRequest
from open_autoglm.export.compare import Variant, measure, onnx_logits
from open_autoglm.export.job import ExportOptions, run_export
from open_autoglm.export.onnx import export_onnx, quantize_onnx_dynamic
from open_autoglm.models import load_finetuned
from open_autoglm.run_folder import RunFolder
from open_autoglm.train.job import run_train

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TARGET_RATIO_B1 = 4.0
MAX_DROP_POINTS = 1.0


def sst2_config(output_dir: Path) -> Any:
    raw = yaml.safe_load((ROOT / "examples" / "sst2_lora.yaml").read_text(encoding="utf-8"))
    raw["output_dir"] = str(output_dir)
    raw["quiet"] = True
    raw["data"] |= {
        "train": str(SHARED / "data" / "sst2" / "train.tsv"),
        "validation": None,
        "test": str(SHARED / "data" / "sst2" / "dev.tsv"),
        "val_ratio": 0.1,
    }
    return validate_config(raw, "benchmarks/quantization.py")


def plain_int8(model_dir: Path, texts: list[str], truth: list[int], rows: int) -> dict:
    """ORT dynamic INT8 of the graph torch.onnx.export writes, with no fusion: the baseline."""
    model, tokenizer, meta = load_finetuned(model_dir)
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    max_length = int(meta["max_length"])
    with tempfile.TemporaryDirectory() as tmp:
        raw = export_onnx(merged.eval(), tokenizer, Path(tmp) / "raw.onnx", opset=18)
        path = quantize_onnx_dynamic(raw, Path(tmp) / "raw.int8.onnx")
        variant = Variant(
            "plain-int8-onnx",
            "onnx",
            path,
            path.stat().st_size / 2**20,
            onnx_logits(path, tokenizer, max_length),
        )
        return measure(variant, texts, truth, list(meta["labels"]), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, help="a model folder trained with the config here (default: train)"
    )
    parser.add_argument("--latency-rows", type=int, default=100, help="texts timed one at a time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = sst2_config(Path(tmp))
        if args.model is None:
            run_train(config)
        model_dir = args.model or config.run_dir / "model"
        options = ExportOptions(
            model=model_dir,
            onnx=True,
            quantize=("dynamic", "static"),
            prune=False,
            latency_rows=args.latency_rows,
        )
        report = run_export(config, options)
        merged_meta = json.loads((config.run_dir / "export" / "merged" / "autoglm.json").read_text("utf-8"))
        test = load_data(DataRequest.of(config), RunFolder(config.run_dir).data).splits["test"]
        labels = list(merged_meta["labels"])
        texts = [str(r["text"]) for r in test]
        truth = [labels.index(str(r["label"])) for r in test]
        baseline = plain_int8(model_dir, texts, truth, args.latency_rows)

    rows = {row["name"]: row for row in report["variants"]}
    for row in [*report["variants"], baseline]:
        print(
            f"{row['name']:22} {row['size_mb']:7.1f} MB  b1 {row['latency_ms_p50_b1']:7.2f} ms  "
            f"b32 {row['latency_ms_p50_b32']:8.2f} ms  accuracy {row['accuracy']:.4f}",
            file=sys.stderr,
        )
    fp32, best = rows["fp32-pytorch"], rows.get(report["best"] or "")
    result: dict[str, Any] = {"benchmark": "quantization", "test_rows": len(texts), "best": report["best"]}
    result["fp32_pytorch"] = {
        k: fp32[k] for k in ("size_mb", "latency_ms_p50_b1", "latency_ms_p50_b32", "accuracy")
    }
    if best is not None:
        result["best_int8"] = {
            k: best[k] for k in ("size_mb", "latency_ms_p50_b1", "latency_ms_p50_b32", "accuracy")
        }
        result |= {
            "latency_ratio_b1": round(fp32["latency_ms_p50_b1"] / best["latency_ms_p50_b1"], 2),
            "latency_ratio_b32": round(fp32["latency_ms_p50_b32"] / best["latency_ms_p50_b32"], 2),
            "size_ratio": round(fp32["size_mb"] / best["size_mb"], 2),
            "accuracy_drop_points": round(100 * (fp32["accuracy"] - best["accuracy"]), 2),
        }
    result["plain_int8_ratio_b1"] = round(fp32["latency_ms_p50_b1"] / baseline["latency_ms_p50_b1"], 2)
    result["plain_int8_accuracy_drop_points"] = round(100 * (fp32["accuracy"] - baseline["accuracy"]), 2)
    result["target_met"] = bool(
        best is not None
        and result["latency_ratio_b1"] >= TARGET_RATIO_B1
        and result["accuracy_drop_points"] <= MAX_DROP_POINTS
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
