"""Export artifacts written whole or not at all, when a library (ONNX Runtime, transformers) writes them itself.

open_autoglm.atomic covers what we write through a file handle; `save_pretrained`, ONNX Runtime's optimizer and
its quantizers take a path instead. They get a temporary sibling of the target (same folder, so the final
rename is atomic), which replaces the target only once they have finished: a kill or a full disk half-way leaves
no torn model.onnx or half a merged/ folder, and a leftover temporary is removed by the next export.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from safetensors import SafetensorError

from open_autoglm.atomic import ArtifactWriteError

# What a failed write raises: OSError from Python's files (ONNX, tokenizers), SafetensorError from the weights'
# Rust writer (an I/O error inside it, a full disk say, surfaces as that and nothing else).
WRITE_ERRORS = (OSError, SafetensorError)


@contextlib.contextmanager
def staged_path(target: Path) -> Iterator[Path]:
    """A temporary sibling path for a file or folder that replaces `target` when the block ends cleanly."""
    partial = target.with_name(f".partial-{target.name}")  # the suffix kept: some writers look at it
    _remove(partial)  # a killed export's leftover
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield partial
        if partial.is_dir():
            _remove(target)  # a folder cannot be renamed over another; the export replaces its own folders
        os.replace(partial, target)
    except WRITE_ERRORS as err:
        if isinstance(err, ArtifactWriteError):
            raise
        if isinstance(err, OSError):
            raise ArtifactWriteError(err.errno, f"could not write {target}: {err.strerror or err}") from err
        raise ArtifactWriteError(f"could not write {target}: {err}") from err
    finally:
        _remove(partial)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
