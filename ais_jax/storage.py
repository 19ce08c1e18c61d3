"""Where ais_jax keeps files, and how it writes them: atomically, never half-written.

Every write goes through `atomic_path`: the content is written to a temporary file beside the
target and renamed onto it only when complete. Two guarantees follow for every command:

* A failed write (read-only folder, full disk, a directory where a file should go) raises
  `WriteError`, one line naming the file and the operating system's reason, and leaves the
  target as it was.
* A write cut off by ``kill -9`` or a power loss leaves only a temporary file named
  ``.<name>.<host>-<pid>-<random>.tmp``. Hidden (so image listings skip it), it never has the
  target's name, and the next write into that folder deletes it once its process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

CACHE_ENV = "AIS_JAX_CACHE"

log = logging.getLogger(__name__)

# Temporary files name their host and process, so a later run can tell an orphan (its process
# is gone) from a write in progress (alive, perhaps in another process or on another host).
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_RE = re.compile(r"^\..+\.([0-9a-f]{8})-(\d+)-[^.]+\.tmp$")
_swept: set[Path] = set()  # folders already cleaned of orphans by this process


class WriteError(OSError):
    """A file could not be written; the message names the file and the OS reason."""

    def __init__(self, path: str | os.PathLike, reason: str, err: int | None = None):
        super().__init__(err, f"{path}: cannot write: {reason}")
        self.filename = str(path)

    def __str__(self) -> str:  # without OSError's "[Errno N]" prefix
        return self.strerror


def cache_key(**parts: Any) -> str:
    """A short stable hash of JSON-serialisable key parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def cache_dir() -> Path:
    """The cache root: ``$AIS_JAX_CACHE`` if set, else ``~/.cache/ais_jax``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "ais_jax"


def _reason(e: OSError, path: Path) -> str:
    """The OS reason of a failed write, with the free space when the disk may be full."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.errno in (None, errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        # A short write (NumPy's "N requested and M written") carries no errno.
        for folder in (path.parent, *path.parents):
            if folder.exists():
                try:
                    free = shutil.disk_usage(folder).free
                except OSError:
                    break
                reason += f" ({free / 2**20:.1f} MiB free on that file system)"
                break
    return reason


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turns an `OSError` raised inside the block into a `WriteError` naming ``path``."""
    try:
        yield
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(path, _reason(e, Path(path)), e.errno) from e


def is_temp_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named as a temporary file of `atomic_path`."""
    return _TEMP_RE.match(Path(path).name) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_orphans(folder: str | os.PathLike) -> list[Path]:
    """Deletes this host's temporary files of `atomic_path` whose process has ended.

    Temporary files of live processes and of other hosts are left alone.

    Returns:
      The files deleted.
    """
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        match = _TEMP_RE.match(p.name)
        if match and match.group(1) == _HOST and int(match.group(2)) != os.getpid() \
                and not _alive(int(match.group(2))):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    if removed:
        log.info("removed %d temporary file(s) of interrupted writes in %s", len(removed), folder)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it onto ``path`` only on success.

    Readers never see a partial file, and an exception leaves nothing under the final name.
    The file is flushed to disk before the rename (so a crash cannot leave an empty file under
    the final name) and gets the usual permissions of a new file (``0o666`` less the umask),
    not the ``0o600`` of a temporary file. The first write of a process into a folder deletes
    the orphans of interrupted earlier writes there (`clean_orphans`).

    Raises:
      WriteError: any `OSError` while creating, writing (inside the block), syncing or renaming
        the file, naming ``path`` and the OS reason.
    """
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a directory")
        folder = path.parent.resolve()
        if folder not in _swept:
            clean_orphans(folder)
            _swept.add(folder)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}-", suffix=".tmp",
                                   dir=path.parent)
        os.close(fd)
    tmp = Path(tmp)
    try:
        with writing(path):
            yield tmp
            # The caller may have replaced the file at `tmp`, so it is reopened here.
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    """The process umask (only readable by setting it, so it is set back at once)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Writes ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes ``array`` as ``.npy`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))
