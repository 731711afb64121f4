"""`autoglm export`: a trained classifier made deployable, top to bottom (a language model: merged, and a causal LM
also as GGUF files for llama.cpp and Ollama, see gguf.py).

model/ → merged/ (adapter merged, checked) → the built-in exporters the options ask for (variants.py): PyTorch
dynamic INT8 → model.onnx (fused, checked against PyTorch), model.int8.onnx (dynamic) and model.int8-static.onnx
(calibrated on train rows) → pruned/ (heads and FFN neurons pruned, recovered by a short fine-tune) and
model.pruned.int8.onnx → the comparison on the test split → the exporters `export.extra` names → export_report.json.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from open_autoglm.atomic import write_json
from open_autoglm.config import Config
from open_autoglm.data.prepared import load_data
from open_autoglm.data.request import DataRequest
from open_autoglm.evaluate.predict import prompt_and_reference
from open_autoglm.export.compare import Variant, build_report, measure, torch_logits
from open_autoglm.export.gguf import GGUF_TYPES, MODELFILE, export_gguf, gguf_name
from open_autoglm.export.gguf_tokenizer import GgufRefused
from open_autoglm.export.lm_compare import lm_bench, measure_lm
from open_autoglm.export.merge import MergedModel, merge_model
from open_autoglm.export.plugins import ExportSource, run_exporters
from open_autoglm.export.variants import CHECK_ROWS, PRUNED_DIR, folder_mb, texts_and_truth
from open_autoglm.run_folder import EXPORT_REPORT, RunFolder
from open_autoglm.tasks import TASKS
from open_autoglm.versions import versions

ONNX_FILES = ("model.onnx", "model.int8.onnx", "model.int8-static.onnx", "model.pruned.int8.onnx")
GGUF_FILES = (*(gguf_name(qtype) for qtype in GGUF_TYPES), MODELFILE)
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
    out_dir = options.out or RunFolder(config.run_dir).export
    out_dir.mkdir(parents=True, exist_ok=True)
    # The report goes first and comes back last: a folder with export_report.json holds every file it lists.
    (out_dir / EXPORT_REPORT).unlink(missing_ok=True)
    # An earlier export's files would sit beside a report that does not list them.
    for name in ONNX_FILES + GGUF_FILES:
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / PRUNED_DIR, ignore_errors=True)

    # 1. Data: the test split scores every variant; train rows calibrate static INT8.
    splits = load_data(DataRequest.of(config), RunFolder(config.run_dir).data).splits
    if TASKS.get(config.task).kind != "classification":
        return _export_language_model(config, options, out_dir, splits)
    test = splits.get("test") or []
    if not test:
        raise ValueError(f"{RunFolder(config.run_dir).data} has no test split to compare the variants on")

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
    texts, truth = texts_and_truth(test, prefix, labels)
    reference = Variant(
        "fp32-pytorch",
        "pytorch",
        merged.path,
        folder_mb(merged.path, "*.safetensors"),
        torch_logits(merged.model, tokenizer, max_length),
    )
    source = ExportSource(
        merged,
        out_dir,
        config.export,
        max_length,
        prefix,
        labels,
        reference,
        check_texts=texts[:CHECK_ROWS],
        train=splits.get("train") or [],
        calibration=splits.get("train") or test,
        quantize=options.quantize,
        onnx=options.onnx,
        seed=config.train.seed,
        batch_size=config.train.batch_size,
    )

    # 3. The built-in exporters the options ask for, each adding its variants (and figures for the report).
    built = run_exporters(_builtin_exporters(options), source)
    variants = [reference] + [variant for exported in built.values() for variant in exported.variants]

    # 4. The comparison, then the exporters export.extra names.
    metric = TASKS.get(config.task).metric
    rows = [measure(v, texts, truth, labels, options.latency_rows) for v in variants]
    report = build_report(config.task, metric, config.export.max_quality_drop, rows)
    report |= {
        "model": str(options.model),
        "test_rows": len(texts),
        "merge_max_abs_diff": merged.max_abs_diff,
        "onnx_fused_operators": {},
        "pruning": None,
    }
    for exported in built.values():
        report |= exported.report
    report["plugins"] = _extra_exports(config, source)
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


def _builtin_exporters(options: ExportOptions) -> list[str]:
    """The built-in exporters (variants.py) the options ask for, in the order they run."""
    asked = {"torch-int8": "dynamic" in options.quantize, "onnx": options.onnx, "pruned": options.prune}
    return [name for name, wanted in asked.items() if wanted]


def _extra_exports(config: Config, source: ExportSource) -> dict[str, str]:
    """Run the exporters `export.extra` names; name -> the path each wrote."""
    return {name: str(exported.path) for name, exported in run_exporters(config.export.extra, source).items()}


def _export_language_model(
    config: Config, options: ExportOptions, out_dir: Path, splits: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """A causal (or masked) LM is exported as its merged model, checked against base + adapter on the logits of a
    few rows, and a causal LM also as the GGUF files `export.gguf` names, compared with it; the ONNX, INT8 and
    pruning variants cover classifiers."""
    rows = (splits.get("test") or splits.get("validation") or splits.get("train") or [])[:CHECK_ROWS]
    trust = config.model.trust_remote_code
    tokenizer = AutoTokenizer.from_pretrained(str(options.model), trust_remote_code=trust)
    texts = [str(r["text"]) if "text" in r else "".join(prompt_and_reference(r, tokenizer)) for r in rows]
    merged = merge_model(options.model, out_dir / "merged", texts, trust_remote_code=trust)
    if options.onnx or options.quantize or options.prune:
        logger.warning(
            "a %s model is exported as its merged model (and GGUF files); ONNX, INT8 and pruning cover classifiers",
            config.task,
        )
    variants, gguf_section = _gguf_variants(config, merged, out_dir, rows, texts)
    report = {
        "task": config.task,
        "model": str(options.model),
        "merged": str(merged.path),
        "size_mb": round(folder_mb(merged.path, "*.safetensors"), 3),
        "merge_max_abs_diff": merged.max_abs_diff,
        "variants": variants,
        "best": None,
        "gguf": gguf_section,
        "plugins": _extra_exports(config, ExportSource(merged, out_dir, config.export)),
        "versions": versions(),
    }
    write_json(out_dir / EXPORT_REPORT, report)
    return report


def _gguf_variants(
    config: Config, merged: MergedModel, out_dir: Path, rows: list[dict[str, Any]], texts: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The merged model and its GGUF files, compared on the check rows; nothing for a masked LM or with
    `export.gguf: []`. A model GGUF cannot hold is logged and recorded: the merged model is still the export."""
    if merged.meta["objective"] != "causal_lm" or not config.export.gguf:
        return [], None
    max_length = int(merged.meta.get("max_length", config.data.max_length))
    bench = lm_bench(rows, texts, merged.model, merged.tokenizer, max_length)
    try:
        files, section = export_gguf(merged, out_dir, config.export.gguf, bench, config.name)
    except GgufRefused as err:
        logger.error("no GGUF file written: %s", err)
        return [], {"refused": str(err)}
    size = folder_mb(merged.path, "*.safetensors")
    return [measure_lm("fp32-merged", "safetensors", merged.path, size, merged.model, bench), *files], section
