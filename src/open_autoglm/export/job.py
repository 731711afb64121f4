"""`autoglm export`: a trained classifier made deployable, top to bottom (a language model: merged only).

model/ → merged/ (adapter merged, checked) → PyTorch dynamic INT8 → model.onnx (fused, checked against PyTorch)
→ model.int8.onnx (dynamic) and model.int8-static.onnx (calibrated on train rows) → pruned/ (heads and FFN neurons
pruned, recovered by a short fine-tune) and model.pruned.int8.onnx → the comparison on the test split
→ export_report.json.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoTokenizer

from open_autoglm.atomic import write_json
from open_autoglm.config import Config
from open_autoglm.data.prepared import load_data
from open_autoglm.evaluate.predict import prompt_and_reference
from open_autoglm.export.compare import Variant, build_report, measure, onnx_logits, torch_logits
from open_autoglm.export.merge import MergedModel, merge_model
from open_autoglm.export.onnx import (
    TextCalibration,
    export_onnx,
    optimize_transformer,
    quantize_onnx_dynamic,
    quantize_onnx_static,
)
from open_autoglm.export.plugins import run_plugin_exporters
from open_autoglm.export.prune import prune_model, save_pruned, score_importance
from open_autoglm.export.recover import recover
from open_autoglm.export.torch_int8 import quantize_linear_int8, serialised_size_mb
from open_autoglm.tasks import TASKS
from open_autoglm.versions import versions

EXPORT_REPORT = "export_report.json"
ONNX_ATOL = 1e-4  # the fp32 graph must compute what PyTorch computes, up to float reordering
ONNX_FILES = ("model.onnx", "model.int8.onnx", "model.int8-static.onnx", "model.pruned.int8.onnx")
PRUNED_DIR = "pruned"
CHECK_ROWS = 16  # rows the merge and ONNX equivalence checks run on
logger = logging.getLogger(__name__)


@dataclass
class ExportOptions:
    model: Path  # a model folder written by train or tune
    onnx: bool = True
    quantize: tuple[str, ...] = ("dynamic", "static")  # dynamic: PyTorch and ONNX; static: ONNX only
    latency_rows: int = 50  # texts timed one at a time
    prune: bool = False  # prune heads and FFN neurons, then fine-tune (off by default here: it trains)
    out: Path | None = None  # default: <run>/export


def run_export(config: Config, options: ExportOptions) -> dict[str, Any]:
    """Make the variants the options ask for in <run>/export/, compare them, write and return the report."""
    if "static" in options.quantize and not options.onnx:
        raise ValueError("static INT8 is an ONNX Runtime quantization: add --onnx")
    out_dir = options.out or config.run_dir / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    # The report goes first and comes back last: a folder with export_report.json holds every file it lists.
    (out_dir / EXPORT_REPORT).unlink(missing_ok=True)
    for name in ONNX_FILES:  # an earlier export's files would sit beside a report that does not list them
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / PRUNED_DIR, ignore_errors=True)

    # 1. Data: the test split scores every variant; train rows calibrate static INT8.
    splits = load_data(config).splits
    if config.task != "classification":
        return _export_language_model(config, options, out_dir, splits)
    test = splits.get("test") or []
    if not test:
        raise ValueError(f"{config.run_dir / 'data'} has no test split to compare the variants on")

    # 2. The full fp32 model (an adapter merged into its base, checked on a few rows).
    merged = merge_model(
        options.model,
        out_dir / "merged",
        [str(r["text"]) for r in test[:CHECK_ROWS]],
        trust_remote_code=config.model.trust_remote_code,
    )
    meta, tokenizer = merged.meta, merged.tokenizer
    if meta["objective"] != "seq_cls":
        raise ValueError(
            f"{options.model} is a {meta['objective']} model; export handles classifiers for now"
        )
    labels = list(meta["labels"])
    max_length = int(meta.get("max_length", config.data.max_length))
    prefix = meta.get("text_prefix", "")
    texts, truth = _texts_and_truth(test, prefix, labels)
    variants = [
        Variant(
            "fp32-pytorch",
            "pytorch",
            merged.path,
            _folder_mb(merged.path, "*.safetensors"),
            torch_logits(merged.model, tokenizer, max_length),
        )
    ]

    # 3. PyTorch dynamic INT8 (measured in memory; see torch_int8.py for why it is not saved).
    if "dynamic" in options.quantize:
        int8 = quantize_linear_int8(merged.model)
        variants.append(
            Variant(
                "int8-dynamic-pytorch",
                "pytorch",
                None,
                serialised_size_mb(int8),
                torch_logits(int8, tokenizer, max_length),
            )
        )

    # 4. ONNX: export, fuse, check against PyTorch, then quantize.
    fused: dict[str, int] = {}
    if options.onnx:
        with tempfile.TemporaryDirectory() as tmp:
            raw = export_onnx(merged.model, tokenizer, Path(tmp) / "raw.onnx", config.export.opset)
            onnx_path = out_dir / "model.onnx"
            fused = optimize_transformer(raw, onnx_path, merged.model.config)
            _check_onnx(variants[0], onnx_path, tokenizer, max_length, texts[:CHECK_ROWS])
            variants.append(_onnx_variant("fp32-onnx", onnx_path, tokenizer, max_length))
            if "dynamic" in options.quantize:  # from the fused graph: ORT has int8 kernels for its fused ops
                path = quantize_onnx_dynamic(onnx_path, out_dir / "model.int8.onnx")
                variants.append(_onnx_variant("int8-dynamic-onnx", path, tokenizer, max_length))
            if (
                "static" in options.quantize
            ):  # from the unfused graph: QDQ needs every tensor's type, and ONNX
                # shape inference cannot type the outputs of ORT's fused operators
                calibration = _calibration_texts(splits.get("train") or test, config, prefix)
                reader = TextCalibration(tokenizer, calibration, max_length)
                path = quantize_onnx_static(raw, out_dir / "model.int8-static.onnx", reader)
                variants.append(_onnx_variant("int8-static-onnx", path, tokenizer, max_length))

    # 5. Pruning: the least important heads and FFN neurons removed, a recovery fine-tune, then the pruned model
    # as it is and (with ONNX and dynamic INT8 asked for) as dynamic INT8 ONNX.
    pruning: dict[str, Any] | None = None
    if options.prune:
        pruned_variants, pruning = _pruned_variants(
            config, options, merged, splits.get("train") or [], out_dir, labels
        )
        variants += pruned_variants

    # 6. The comparison.
    metric = TASKS.get(config.task).metric
    rows = [measure(v, texts, truth, labels, options.latency_rows) for v in variants]
    report = build_report(config.task, metric, config.export.max_quality_drop, rows)
    report |= {
        "model": str(options.model),
        "test_rows": len(texts),
        "merge_max_abs_diff": merged.max_abs_diff,
        "onnx_fused_operators": fused,
        "pruning": pruning,
        "plugins": run_plugin_exporters(config.export.extra, merged.path, out_dir),
    }
    report["versions"] = versions()
    write_json(out_dir / EXPORT_REPORT, report)
    for row in report["variants"]:
        if not row["within_tolerance"]:
            logger.warning(
                "%s breaks the tolerance: %s drops by %.4f (> %g)",
                row["name"],
                metric,
                row["quality_drop"],
                report["tolerance"],
            )
    return report


def _pruned_variants(
    config: Config,
    options: ExportOptions,
    merged: MergedModel,
    train: list[dict[str, Any]],
    out_dir: Path,
    labels: list[str],
) -> tuple[list[Variant], dict[str, Any]]:
    """pruned/ and its variants, and the report's `pruning` section (shapes kept, the recovery's figures)."""
    settings = config.export.prune
    if not train:
        raise ValueError("pruning scores importance and recovers on the train split, and this run has none")
    tokenizer, meta = merged.tokenizer, merged.meta
    max_length = int(meta.get("max_length", config.data.max_length))
    prefix = meta.get("text_prefix", "")
    scored = random.Random(config.train.seed).sample(train, min(settings.importance_rows, len(train)))
    importance = score_importance(
        merged.model, tokenizer, *_texts_and_truth(scored, prefix, labels), max_length
    )
    pruned = prune_model(merged.model, importance, settings.sparsity, settings.heads, settings.ffn)
    train_texts, train_truth = _texts_and_truth(train, prefix, labels)
    recovery = recover(
        pruned.model,
        tokenizer,
        train_texts,
        train_truth,
        max_length,
        epochs=settings.recovery_epochs,
        lr=settings.recovery_lr,
        batch_size=config.train.batch_size,
        seed=config.train.seed,
    )
    path = out_dir / PRUNED_DIR
    save_pruned(pruned.model, tokenizer, meta, pruned.record, path)
    reference = Variant(
        "pruned-fp32-pytorch",
        "pytorch",
        path,
        _folder_mb(path, "*.safetensors"),
        torch_logits(pruned.model, tokenizer, max_length),
    )
    variants = [reference]
    fused: dict[str, int] = {}
    if options.onnx and "dynamic" in options.quantize:  # the fused fp32 graph is only a step towards INT8
        with tempfile.TemporaryDirectory() as tmp:
            raw = export_onnx(pruned.model, tokenizer, Path(tmp) / "raw.onnx", config.export.opset)
            fp32 = Path(tmp) / "model.pruned.onnx"
            heads = [len(layer["heads"]) for layer in pruned.record["layers"]]
            fused = optimize_transformer(raw, fp32, pruned.model.config, heads)
            _check_onnx(reference, fp32, tokenizer, max_length, train_texts[:CHECK_ROWS])
            int8 = quantize_onnx_dynamic(fp32, out_dir / "model.pruned.int8.onnx")
        variants.append(_onnx_variant("pruned-int8-dynamic-onnx", int8, tokenizer, max_length))
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
    return variants, section


def _export_language_model(
    config: Config, options: ExportOptions, out_dir: Path, splits: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """A causal (or masked) LM is exported as its merged model, checked against base + adapter on the logits of a
    few rows; the ONNX, INT8 and pruning variants and their comparison cover classifiers."""
    rows = (splits.get("test") or splits.get("validation") or splits.get("train") or [])[:CHECK_ROWS]
    trust = config.model.trust_remote_code
    tokenizer = AutoTokenizer.from_pretrained(str(options.model), trust_remote_code=trust)
    texts = [str(r["text"]) if "text" in r else "".join(prompt_and_reference(r, tokenizer)) for r in rows]
    merged = merge_model(options.model, out_dir / "merged", texts, trust_remote_code=trust)
    if options.onnx or options.quantize or options.prune:
        logger.warning(
            "a %s model is exported as its merged model only; ONNX, INT8 and pruning cover classifiers",
            config.task,
        )
    report = {
        "task": config.task,
        "model": str(options.model),
        "merged": str(merged.path),
        "size_mb": round(_folder_mb(merged.path, "*.safetensors"), 3),
        "merge_max_abs_diff": merged.max_abs_diff,
        "variants": [],
        "best": None,
        "plugins": run_plugin_exporters(config.export.extra, merged.path, out_dir),
        "versions": versions(),
    }
    write_json(out_dir / EXPORT_REPORT, report)
    return report


def _check_onnx(
    reference: Variant, onnx_path: Path, tokenizer: Any, max_length: int, texts: list[str]
) -> None:
    diff = float(np.abs(onnx_logits(onnx_path, tokenizer, max_length)(texts) - reference.logits(texts)).max())
    if diff > ONNX_ATOL:
        raise ValueError(f"{onnx_path}: its logits differ from PyTorch's by {diff:.2e} (> {ONNX_ATOL:g})")
    logger.info("%s matches PyTorch (largest logit difference %.2e)", onnx_path.name, diff)


def _onnx_variant(name: str, path: Path, tokenizer: Any, max_length: int) -> Variant:
    return Variant(name, "onnx", path, _mb(path), onnx_logits(path, tokenizer, max_length))


def _texts_and_truth(
    rows: list[dict[str, Any]], prefix: str, labels: list[str]
) -> tuple[list[str], list[int]]:
    """Classifier inputs as training saw them (with the text prefix) and the label indices."""
    return [prefix + str(r["text"]) for r in rows], [labels.index(str(r["label"])) for r in rows]


def _calibration_texts(rows: list[dict[str, Any]], config: Config, prefix: str) -> list[str]:
    """A seeded sample of `export.calibration_rows` rows (all of them when there are fewer)."""
    count = min(config.export.calibration_rows, len(rows))
    chosen = random.Random(config.train.seed).sample(rows, count)
    return [prefix + str(r["text"]) for r in chosen]


def _mb(path: Path) -> float:
    return path.stat().st_size / 2**20


def _folder_mb(folder: Path, pattern: str) -> float:
    return sum(f.stat().st_size for f in folder.glob(pattern)) / 2**20
