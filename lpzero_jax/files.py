"""Files a run writes and reads: atomic writes, the workdir lock, safe names, content digests.

Every output (tables, JSON, checkpoints, cached inputs) goes through `atomic_write`: the bytes go to
a temp file in the same folder, are fsynced, and the temp file is renamed over the target. A reader
(or a rerun after kill -9 or a full disk) sees the old file or the new one, never half of one; a
failed write removes its temp file. Temp names end in TMP_SUFFIX, so leftovers of a killed process
are recognisable (`remove_stale_temp_files`).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import functools
import hashlib
import json
import math
import os
import uuid
from pathlib import Path
from typing import IO, Iterator, Mapping, Sequence, Union

import numpy as np

from lpzero_jax.errors import ConfigError, WorkdirBusyError

TMP_SUFFIX = ".tmp"
LOCK_NAME = ".lock"
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_MAX_NAME = 150
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.ENOENT,
                 errno.EISDIR)


def _sync(f: IO) -> None:
    """Flushes a file to disk (the point where a full disk reports ENOSPC at the latest)."""
    f.flush()
    os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_write(path: Union[str, Path], binary: bool = False) -> Iterator[IO]:
    """Opens a temp file next to `path` for writing; on success it is fsynced and renamed to
    `path`, on any exception it is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with (os.fdopen(fd, "wb") if binary else
              os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
            yield f
            _sync(f)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not e.filename:
            raise with_path(e, path) from e
        raise


def with_path(error: OSError, path: Union[str, Path]) -> OSError:
    """`error` naming `path` (ENOSPC from a write or fsync names no file: the one-line report
    would not say which file, or which disk, is full)."""
    if error.filename:
        return error
    return type(error)(error.errno, error.strerror or str(error), str(path))


def write_text(path: Union[str, Path], text: str) -> None:
    """Writes `text` to `path` atomically."""
    with atomic_write(path) as f:
        f.write(text)


def write_csv(path: Union[str, Path], rows: Sequence[Mapping], columns: Sequence[str] = ()) -> None:
    """Writes `rows` (mappings) as CSV to `path` atomically, with the header `columns` (default:
    the first row's keys)."""
    columns = list(columns) or (list(rows[0]) if rows else [])
    with atomic_write(path) as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def json_safe(value):
    """`value` with every NaN / inf float (Python or NumPy) as None, NumPy scalars and arrays as
    Python numbers and lists: what valid JSON can hold (`null` for an undefined value)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Union[str, Path], payload, indent=None, exact: bool = False) -> None:
    """Writes `payload` as JSON to `path` atomically (non-JSON values as their str). Outputs are
    valid JSON: NaN and inf are written `null`. `exact=True` keeps them as Python's NaN /
    Infinity for a state file that only this package reads back as numbers (a checkpoint)."""
    text = json.dumps(payload, indent=indent, default=str) if exact else \
        json.dumps(json_safe(payload), indent=indent, default=str, allow_nan=False)
    write_text(path, text)


def remove_stale_temp_files(directory: Union[str, Path]) -> int:
    """Removes temp files of `atomic_write` left under `directory` by a killed process (call it
    only while holding the workdir lock exclusively). Returns how many were removed."""
    removed = 0
    for p in Path(directory).rglob(f".*{TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            p.unlink()
            removed += 1
    return removed


@contextlib.contextmanager
def workdir_lock(workdir: Union[str, Path], shared: bool = False) -> Iterator[Path]:
    """Holds `workdir/.lock` (flock) for the duration: exclusive, or shared for processes meant to
    work on one workdir together (rank shards, the hosts of one distributed run). A second
    exclusive holder, or a mix of the two kinds, is refused with WorkdirBusyError."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise WorkdirBusyError(
                f"workdir {workdir} is in use by another run (pid {holder}, lock {path}); wait for "
                "it to finish or use another workdir (only rank_shard runs may share one)") from None
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def safe_name(arch_id) -> str:
    """A file name for an architecture id that stays inside its folder and never collides: letters,
    digits, '_' and '-' are kept, every other byte is written %XX (so '../x' -> '%2E%2E%2Fx');
    very long ids are cut and suffixed with a hash of the whole id."""
    text = str(arch_id)
    name = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in text)
    if not name:
        name = "%"  # the empty id
    if len(name) > _MAX_NAME:
        name = name[:_MAX_NAME - 17] + "~" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return name


def value_digest(value) -> str:
    """sha256 (hex, 16 chars) of a JSON-able value (keys sorted): names what a result was computed
    from."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def file_digest(path: Union[str, Path]) -> str:
    """sha256 (hex, 16 chars) of a file's bytes, or of a directory's files (relative names and
    bytes, sorted). Memoised on (path, size, mtime, inode) so a run hashes a large corpus once."""
    path = Path(path).resolve()
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            h.update(str(p.relative_to(path)).encode() + b"\0")
            h.update(file_digest(p).encode())
        return h.hexdigest()[:16]
    st = path.stat()
    return _digest(str(path), st.st_size, st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=4096)
def _digest(path: str, size: int, mtime_ns: int, inode: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def check_writable(directory: Union[str, Path], setting: str) -> None:
    """Creates `directory` if needed and writes a probe file in it; ConfigError naming `setting`
    if that fails (an unwritable workdir or cache dir is found before any work)."""
    directory = Path(directory).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # one probe per process: the hosts of a distributed job probe the shared workdir together
        probe = directory / f".write_probe.{uuid.uuid4().hex}"
        with atomic_write(probe) as f:
            f.write("ok")
        probe.unlink()
    except OSError as e:
        if e.errno not in _NOT_WRITABLE:
            raise  # e.g. a full disk: the environment's failure, reported as such
        raise ConfigError(f"{setting}: cannot write in {directory} ({e.strerror or e}); "
                          f"choose a writable folder with --config.{setting}=PATH") from None
