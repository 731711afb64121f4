"""What `autoglm serve --model PATH` accepts: a model folder written by train/tune/export (a full or merged model,
or an adapter on its base), or an ONNX file written by `autoglm export` (fp32 or INT8), run by ONNX Runtime.

A folder's own code (modeling_*.py) runs only when the operator passes `trust_remote_code`; what the folder's
autoglm.json says is never enough: a downloaded folder must not decide to run code."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from open_autoglm.models.loading import load_finetuned, read_meta
from open_autoglm.run_folder import ModelFolder
from open_autoglm.serve.served_model import ServedModel, served_name

SERVED_OBJECTIVES = ("seq_cls", "causal_lm")  # a masked LM has no route to serve


def load_served(model_path: str | Path, device: str = "cpu", trust_remote_code: bool = False) -> ServedModel:
    model_path = Path(model_path)
    if model_path.suffix == ".onnx":
        return _load_onnx(model_path, device, trust_remote_code)
    model, tokenizer, meta = load_finetuned(model_path, device, trust_remote_code=trust_remote_code)
    _check_objective(model_path, meta)
    context_length = getattr(model.config, "max_position_embeddings", None)
    return ServedModel(served_name(model_path), tokenizer, meta, context_length, model=model)


def _load_onnx(onnx_path: Path, device: str, trust_remote_code: bool) -> ServedModel:
    """The graph from `onnx_path`; the tokenizer, labels and positions from the model folder it was exported from
    (the file's own folder, or `merged/` beside it, as `autoglm export` lays them out)."""
    import onnxruntime as ort

    if not onnx_path.is_file():
        raise FileNotFoundError(f"{onnx_path}: no such ONNX file")
    folder = next(
        (f for f in (onnx_path.parent, onnx_path.parent / "merged") if ModelFolder(f).meta.is_file()), None
    )
    if folder is None:
        raise FileNotFoundError(
            f"{onnx_path}: neither its folder nor merged/ beside it has {ModelFolder(onnx_path.parent).meta.name}; "
            "serve the ONNX files inside the export folder that autoglm export wrote"
        )
    meta = read_meta(folder).to_json()
    _check_objective(onnx_path, meta)
    if meta["objective"] != "seq_cls":
        raise ValueError(f"{onnx_path}: ONNX serving covers classifiers; serve {folder} for generation")
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(onnx_path), providers=providers)
    config = AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    context_length = getattr(config, "max_position_embeddings", None)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    return ServedModel(served_name(onnx_path), tokenizer, meta, context_length, session=session)


def _check_objective(path: Path, meta: dict) -> None:
    if meta.get("objective") not in SERVED_OBJECTIVES:
        raise ValueError(
            f"{path}: a {meta.get('objective')} model has nothing to serve "
            f"(classifiers and causal language models can be served)"
        )
