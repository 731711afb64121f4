"""ONNX: export a merged sequence classifier, fuse it with ONNX Runtime's transformer optimizer, quantize to INT8.

Batch and sequence dimensions stay dynamic (see `export_onnx` for the choice of exporter). Static INT8 calibrates activation ranges on train rows: QDQ format
(what ORT's CPU and GPU providers both run), per-channel weights, and the Percentile method, because transformer
activations carry rare outliers that MinMax would let stretch the int8 scale over, costing the common values
their precision; Entropy is as robust but far slower to calibrate.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.atomic import staged_path

logger = logging.getLogger(__name__)

# Architectures ONNX Runtime's optimizer fuses with its BERT rules (attention, layer norm, GELU, embeddings).
BERT_LIKE = {"bert", "roberta", "xlm-roberta", "distilbert", "electra", "camembert", "mpnet", "deberta-v2"}
STATIC_OPS = ("MatMul", "Gemm")
# ONNX's shape inference cannot type the outputs of ORT's fused operators (Attention, ...): they are float.
FUSED_GRAPH_TYPES = {"DefaultTensorType": onnx.TensorProto.FLOAT}
OPTIMIZER_MODEL_TYPE = {"distilbert": "bert", "electra": "bert", "camembert": "bert", "mpnet": "bert"}


def model_inputs(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The tensors the tokenizer gives the model (token_type_ids only where the model uses them)."""
    return [
        name
        for name in tokenizer.model_input_names
        if name in ("input_ids", "attention_mask", "token_type_ids")
    ]


def export_onnx(model: nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path, opset: int) -> Path:
    """The fp32 graph of `model` at `path`: inputs as the tokenizer names them, output `logits` (batch, labels).

    The TorchScript exporter runs first, on a copy with eager attention: its graph is the one ONNX Runtime's
    optimizer recognises (Attention and EmbedLayerNormalization fuse; in the dynamo exporter's graph, SDPA
    or eager, they do not). It is deprecated, so where it fails the dynamo exporter takes over.
    """
    names = model_inputs(tokenizer)
    example = tokenizer(["an example", "a second, longer example text"], padding=True, return_tensors="pt")
    args = tuple(example[name] for name in names)  # each (batch, sequence)
    eager = copy.deepcopy(model).to("cpu").eval()
    if hasattr(eager, "set_attn_implementation"):
        eager.set_attn_implementation("eager")  # type: ignore[operator]
    wrapped = _LogitsOnly(eager, names).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {"input_names": names, "output_names": ["logits"], "opset_version": opset}
    with torch.inference_mode(False), torch.no_grad():
        try:
            axes = {name: {0: "batch", 1: "sequence"} for name in names} | {"logits": {0: "batch"}}
            torch.onnx.export(wrapped, args, str(path), dynamo=False, dynamic_axes=axes, **common)
        except Exception as err:  # noqa: BLE001  (any failure of the old exporter: the new one may still work)
            logger.info("TorchScript ONNX export failed (%s); using the dynamo exporter", err)
            batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
            shapes = (tuple({0: batch, 1: sequence} for _ in names),)  # one entry: the *tensors
            torch.onnx.export(
                wrapped, args, str(path), dynamo=True, dynamic_shapes=shapes, external_data=False, **common
            )
    return path


class _LogitsOnly(nn.Module):
    """The classifier called with positional tensors (named by `names`) and one output, `logits`."""

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors, strict=True))).logits


def optimize_transformer(
    source: Path, target: Path, config: Any, heads_per_layer: Sequence[int] = ()
) -> dict[str, int]:
    """Fuse attention / layer norm / GELU where ONNX Runtime knows the architecture; else copy unchanged.

    `heads_per_layer` gives a pruned model's head counts. The exporter leaves each attention reshape's head count
    as -1 and the optimizer then takes the count it is given for every layer, so attention fuses only when the
    layers agree; otherwise it stays unfused (the other fusions still apply).
    Returns the count of each fused operator (empty when skipped)."""
    model_type = getattr(config, "model_type", "")
    if model_type not in BERT_LIKE:
        logger.info(
            "ONNX Runtime's transformer optimizer has no rules for %r: model.onnx is unfused", model_type
        )
        _copy(source, target)
        return {}
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    optimizer_type = OPTIMIZER_MODEL_TYPE.get(model_type, "bert")
    num_heads = int(getattr(config, "num_attention_heads", 0))
    hidden_size = int(getattr(config, "hidden_size", 0))
    options = FusionOptions(optimizer_type)
    if heads_per_layer:
        hidden_size = hidden_size // num_heads * heads_per_layer[0]  # what the attention projections output
        num_heads = heads_per_layer[0]
        options.enable_attention = len(set(heads_per_layer)) == 1
    try:
        optimized = optimize_model(
            str(source),
            model_type=optimizer_type,
            num_heads=num_heads,
            hidden_size=hidden_size,
            optimization_options=options,
        )
    except Exception as err:  # noqa: BLE001  (the optimizer is an extra; an unfused model still works)
        logger.warning("ONNX Runtime's transformer optimizer failed (%s): model.onnx is unfused", err)
        _copy(source, target)
        return {}
    fused = {name: int(count) for name, count in optimized.get_fused_operator_statistics().items() if count}
    logger.info("fused operators: %s", fused or "none")
    with staged_path(target) as partial:
        optimized.save_model_to_file(str(partial))
    return fused


def _copy(source: Path, target: Path) -> None:
    with staged_path(target) as partial:
        shutil.copyfile(source, partial)


def quantize_onnx_dynamic(source: Path, target: Path) -> Path:
    """INT8 weights per output channel; activations quantized at run time (no calibration needed)."""
    with staged_path(target) as partial:
        _quantize_dynamic(source, partial)
    return target


def _quantize_dynamic(source: Path, target: Path) -> None:
    quantize_dynamic(
        str(source),
        str(target),
        per_channel=True,
        weight_type=QuantType.QInt8,
        extra_options=FUSED_GRAPH_TYPES,
    )


class TextCalibration(CalibrationDataReader):
    """Feeds calibration texts one at a time, all padded to the longest of them: ORT's histogram calibrators
    stack each tensor's values across calls, so every call must have the same shape."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> None:
        names = model_inputs(tokenizer)
        encoded = tokenizer(
            list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="np"
        )
        arrays = {name: encoded[name].astype(np.int64) for name in names}  # each (N, longest)
        self._rows: Iterator[dict[str, np.ndarray]] = (
            {name: array[i : i + 1] for name, array in arrays.items()} for i in range(len(texts))
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._rows, None)


def quantize_onnx_static(source: Path, target: Path, calibration: CalibrationDataReader) -> Path:
    """INT8 weights (per channel) and activations (ranges from `calibration`), as QDQ pairs."""
    printed = io.StringIO()  # ORT's calibrator print()s its progress; it goes to the log, not the terminal
    with contextlib.redirect_stdout(printed), staged_path(target) as partial:
        _quantize_static(source, partial, calibration)
    logger.debug("ONNX Runtime calibration: %s", printed.getvalue().strip())
    return target


def _quantize_static(source: Path, target: Path, calibration: CalibrationDataReader) -> None:
    quantize_static(
        str(source),
        str(target),
        calibration,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8,
        calibrate_method=CalibrationMethod.Percentile,
        # Only the linear layers (nearly all the compute): quantizing every op also rounds the embedding
        # lookups, residual adds and the attention mask's large negative fill, which cost a tiny BERT a third
        # of its agreement with fp32 against none for MatMul/Gemm alone.
        op_types_to_quantize=list(STATIC_OPS),
    )
