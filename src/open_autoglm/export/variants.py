"""The built-in exporters of a classifier, each an entry of `EXPORTERS` that hands its variants to the comparison.

`torch-int8`: PyTorch dynamic INT8, measured in memory. `onnx`: model.onnx (fused, checked against PyTorch), and
from it model.int8.onnx (dynamic) and model.int8-static.onnx (calibrated on train rows). `pruned`: pruned/ (heads
and FFN neurons pruned, recovered by a short fine-tune) and model.pruned.int8.onnx.
"""

from __future__ import annotations

import logging
import random
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from open_autoglm.export.compare import Variant, onnx_logits, torch_logits
from open_autoglm.export.onnx import (
    TextCalibration,
    export_onnx,
    optimize_transformer,
    quantize_onnx_dynamic,
    quantize_onnx_static,
)
from open_autoglm.export.plugins import EXPORTERS, Exported, ExportSource
from open_autoglm.export.prune import prune_model, save_pruned, score_importance
from open_autoglm.export.recover import recover
from open_autoglm.export.torch_int8 import quantize_linear_int8, serialised_size_mb

ONNX_ATOL = 1e-4  # the fp32 graph must compute what PyTorch computes, up to float reordering
CHECK_ROWS = 16  # rows the merge and ONNX equivalence checks run on
PRUNED_DIR = "pruned"
logger = logging.getLogger(__name__)


@EXPORTERS.register
class TorchInt8Exporter:
    """PyTorch dynamic INT8 (see torch_int8.py for why it is measured, not saved)."""

    name: ClassVar[str] = "torch-int8"

    def export(self, source: ExportSource) -> Exported:
        int8 = quantize_linear_int8(source.merged.model)
        variant = Variant(
            "int8-dynamic-pytorch",
            "pytorch",
            None,
            serialised_size_mb(int8),
            torch_logits(int8, source.merged.tokenizer, source.max_length),
        )
        return Exported(None, [variant])


@EXPORTERS.register
class OnnxExporter:
    """model.onnx, fused and checked against PyTorch, and the INT8 graphs `source.quantize` asks for."""

    name: ClassVar[str] = "onnx"

    def export(self, source: ExportSource) -> Exported:
        merged, out_dir = source.merged, source.out_dir
        tokenizer, max_length = merged.tokenizer, source.max_length
        with tempfile.TemporaryDirectory() as tmp:
            raw = export_onnx(merged.model, tokenizer, Path(tmp) / "raw.onnx", source.settings.opset)
            onnx_path = out_dir / "model.onnx"
            fused = optimize_transformer(raw, onnx_path, merged.model.config)
            check_onnx(source, onnx_path, source.check_texts)
            variants = [onnx_variant("fp32-onnx", onnx_path, source)]
            if "dynamic" in source.quantize:  # from the fused graph: ORT has int8 kernels for its fused ops
                path = quantize_onnx_dynamic(onnx_path, out_dir / "model.int8.onnx")
                variants.append(onnx_variant("int8-dynamic-onnx", path, source))
            if "static" in source.quantize:  # from the unfused graph: QDQ needs every tensor's type, and ONNX
                # shape inference cannot type the outputs of ORT's fused operators
                reader = TextCalibration(tokenizer, _calibration_texts(source), max_length)
                path = quantize_onnx_static(raw, out_dir / "model.int8-static.onnx", reader)
                variants.append(onnx_variant("int8-static-onnx", path, source))
        return Exported(onnx_path, variants, {"onnx_fused_operators": fused})


@EXPORTERS.register
class PrunedExporter:
    """The least important heads and FFN neurons removed and a recovery fine-tune: pruned/ as it is and (with ONNX
    and dynamic INT8 asked for) as dynamic INT8 ONNX; the report's `pruning` section says what was kept."""

    name: ClassVar[str] = "pruned"

    def export(self, source: ExportSource) -> Exported:
        settings, merged = source.settings.prune, source.merged
        if not source.train:
            raise ValueError(
                "pruning scores importance and recovers on the train split, and this run has none"
            )
        tokenizer, max_length = merged.tokenizer, source.max_length
        scored = random.Random(source.seed).sample(
            source.train, min(settings.importance_rows, len(source.train))
        )
        importance = score_importance(
            merged.model, tokenizer, *texts_and_truth(scored, source.prefix, source.labels), max_length
        )
        pruned = prune_model(merged.model, importance, settings.sparsity, settings.heads, settings.ffn)
        train_texts, train_truth = texts_and_truth(source.train, source.prefix, source.labels)
        recovery = recover(
            pruned.model,
            tokenizer,
            train_texts,
            train_truth,
            max_length,
            epochs=settings.recovery_epochs,
            lr=settings.recovery_lr,
            batch_size=source.batch_size,
            seed=source.seed,
        )
        path = source.out_dir / PRUNED_DIR
        save_pruned(pruned.model, tokenizer, merged.meta, pruned.record, path)
        reference = Variant(
            "pruned-fp32-pytorch",
            "pytorch",
            path,
            folder_mb(path, "*.safetensors"),
            torch_logits(pruned.model, tokenizer, max_length),
        )
        variants = [reference]
        fused: dict[str, int] = {}
        if source.onnx and "dynamic" in source.quantize:  # the fused fp32 graph is only a step towards INT8
            with tempfile.TemporaryDirectory() as tmp:
                raw = export_onnx(pruned.model, tokenizer, Path(tmp) / "raw.onnx", source.settings.opset)
                fp32 = Path(tmp) / "model.pruned.onnx"
                heads = [len(layer["heads"]) for layer in pruned.record["layers"]]
                fused = optimize_transformer(raw, fp32, pruned.model.config, heads)
                _check(reference, fp32, tokenizer, max_length, train_texts[:CHECK_ROWS])
                int8 = quantize_onnx_dynamic(fp32, source.out_dir / "model.pruned.int8.onnx")
            variants.append(onnx_variant("pruned-int8-dynamic-onnx", int8, source))
        section = {
            "path": str(path),
            "sparsity": settings.sparsity,
            "importance_rows": len(scored),
            "heads_kept": pruned.heads_kept,
            "heads_total": pruned.heads_total,
            "ffn_neurons_kept": pruned.neurons_kept,
            "ffn_neurons_total": pruned.neurons_total,
            "parameters_before": pruned.parameters_before,
            "parameters_after": pruned.parameters_after,
            "onnx_fused_operators": fused,
            "recovery": asdict(recovery),
        }
        return Exported(path, variants, {"pruning": section})


def check_onnx(source: ExportSource, onnx_path: Path, texts: list[str]) -> None:
    """Refuse a graph whose logits differ from the fp32 PyTorch model's on `texts`."""
    if source.reference is None:
        raise ValueError("an ONNX export is checked against the fp32 PyTorch model, and none was given")
    _check(source.reference, onnx_path, source.merged.tokenizer, source.max_length, texts)


def _check(reference: Variant, onnx_path: Path, tokenizer: Any, max_length: int, texts: list[str]) -> None:
    diff = float(np.abs(onnx_logits(onnx_path, tokenizer, max_length)(texts) - reference.logits(texts)).max())
    if diff > ONNX_ATOL:
        raise ValueError(f"{onnx_path}: its logits differ from PyTorch's by {diff:.2e} (> {ONNX_ATOL:g})")
    logger.info("%s matches PyTorch (largest logit difference %.2e)", onnx_path.name, diff)


def onnx_variant(name: str, path: Path, source: ExportSource) -> Variant:
    return Variant(
        name,
        "onnx",
        path,
        path.stat().st_size / 2**20,
        onnx_logits(path, source.merged.tokenizer, source.max_length),
    )


def texts_and_truth(
    rows: list[dict[str, Any]], prefix: str, labels: list[str]
) -> tuple[list[str], list[int]]:
    """Classifier inputs as training saw them (with the text prefix) and the label indices."""
    return [prefix + str(r["text"]) for r in rows], [labels.index(str(r["label"])) for r in rows]


def _calibration_texts(source: ExportSource) -> list[str]:
    """A seeded sample of `export.calibration_rows` rows (all of them when there are fewer)."""
    rows = source.calibration
    chosen = random.Random(source.seed).sample(rows, min(source.settings.calibration_rows, len(rows)))
    return [source.prefix + str(r["text"]) for r in chosen]


def folder_mb(folder: Path, pattern: str) -> float:
    return sum(f.stat().st_size for f in folder.glob(pattern)) / 2**20
