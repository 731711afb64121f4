"""GGUF files (llama.cpp's format) as plain Hugging Face model folders: dequantized once, cached by the file's hash.

transformers reads a GGUF file through the `gguf` package and dequantizes it to fp32, but marks the model
quantized, and then refuses to fine-tune or save it. Rebuilt from its config without the quantization entry and
given the dequantized weights, it is an ordinary model that trains and saves. That rebuild is written once into
a cache folder named by the GGUF file's SHA-256, whole or not at all (a kill leaves no half folder), so later
loads read safetensors in seconds instead of dequantizing again.

The weights keep the GGUF file's rounding error: a Q4 file gives a model that is a 4-bit-rounded copy of the
original, whatever precision it is trained in afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from open_autoglm.atomic import staged_path, write_json

CACHE_ENV = "AUTOGLM_CACHE"
SOURCE_RECORD = "gguf_source.json"  # in a dequantized folder: which file it came from, and its hash
logger = logging.getLogger(__name__)


def cache_root() -> Path:
    """Where dequantized models and assembled files live: $AUTOGLM_CACHE, else ~/.cache/open_autoglm."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "open_autoglm"


def is_gguf(name: str | Path) -> bool:
    return str(name).lower().endswith(".gguf")


def sha256_of(path: Path) -> str:
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """Cached by size and modification time: every load of an alias asks, the bytes are read once."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def dequantized_folder(gguf_path: str | Path, *, key: str = "model.name") -> Path:
    """The Hugging Face folder of `gguf_path` (a causal language model), made on first use.

    `key` names the config key that gave the path, for the error on a missing file."""
    source = Path(gguf_path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"{key}: no such GGUF file: {source}")
    digest = sha256_of(source)
    target = cache_root() / "gguf" / f"{source.stem}-{digest[:16]}"
    if (target / SOURCE_RECORD).is_file():
        return target
    logger.info("dequantizing %s once into %s", source, target)
    with staged_path(target) as partial:
        partial.mkdir(parents=True)
        _dequantize_into(source, partial)
        write_json(partial / SOURCE_RECORD, {"gguf": str(source), "sha256": digest})
    return target


def _dequantize_into(source: Path, out_dir: Path) -> None:
    """Load the GGUF file with transformers, rebuild a plain model from its config, save both halves."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized: Any = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # what makes transformers refuse to train or save it
    plain: Any = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    result = plain.load_state_dict(quantized.state_dict(), strict=False)
    tied = set(getattr(plain, "all_tied_weights_keys", None) or {})  # e.g. lm_head.weight: the embeddings
    missing = [k for k in result.missing_keys if k not in tied]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{source}: the rebuilt model does not take the file's weights "
            f"(missing {missing[:5]}, unexpected {result.unexpected_keys[:5]})"
        )
    plain.tie_weights()
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
