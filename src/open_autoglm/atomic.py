"""Atomic file writes: a reader sees the old file or the whole new one, never a torn one.

Every artifact of a run (splits, reports, summary, config, metrics, model metadata, exports) goes through here.
The new content is written to a temporary file in the same folder, flushed and fsynced, then renamed over the
target (`os.replace`, atomic on POSIX and Windows). A failure on the way (disk full, a kill, an exception)
leaves the previous file as it was and removes the temporary one, and the error names the target file.
What a library writes itself given a path (`save_pretrained`, ONNX Runtime) goes to a staged sibling path that
replaces the target once the library has finished (`staged_path`).
Written by hand: the standard library has no atomic writer, and the small packages that do are not kept up.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from safetensors import SafetensorError

# What a failed write raises: OSError from Python's files (ONNX, tokenizers), SafetensorError from the weights'
# Rust writer (an I/O error inside it, a full disk say, surfaces as that and nothing else).
WRITE_ERRORS = (OSError, SafetensorError)
DISK_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS}
)  # the disk, not the code


class ArtifactWriteError(OSError):
    """Writing an artifact failed; the file named keeps its earlier content (or stays absent)."""


def _fsync_folder(folder: Path) -> None:
    # The rename itself must survive a power cut: fsync the folder entry (not possible on Windows).
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@functools.cache
def _mode_from_umask() -> int:
    # Reading the umask means setting it; once per process, so no other thread sees the brief 0.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary sibling of `path` for writing; on a clean exit it replaces `path`, else it is removed."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, _mode_from_umask())  # mkstemp makes 0600; an artifact gets what open() would give
        with open(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError) and not isinstance(err, ArtifactWriteError):
            raise ArtifactWriteError(err.errno, f"could not write {target}: {err.strerror or err}") from err
        raise
    _fsync_folder(target.parent)


def write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """Write `obj` as JSON (UTF-8, non-ASCII kept) to `path` atomically."""
    write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


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


def signal_file_size_exceeded_as_error() -> None:
    """Make a file-size limit (`ulimit -f`, SIGXFSZ) raise OSError(EFBIG) instead of killing the process.

    A full disk raises ENOSPC by itself; a file-size limit kills by default, which would skip every cleanup.
    """
    import signal

    if hasattr(signal, "SIGXFSZ"):
        with contextlib.suppress(ValueError):  # not in the main thread: leave it be
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
