"""Resumable results: one JSON record per finished unit of work, keyed by what it depends on.

A record carries a ``run_key`` (a hash of every input the result depends on). A record is
reused only when its key matches, so a changed input, setting or format version recomputes it,
and an interrupted run restarts at the first unit without a matching record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ais_jax import storage

log = logging.getLogger(__name__)


def digest(x: np.ndarray) -> str:
    """sha256 of an array's float64 values (e.g. the human matrix a result depends on)."""
    return hashlib.sha256(np.ascontiguousarray(x, np.float64).tobytes()).hexdigest()


def run_key(**parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (same scheme as the activation cache)."""
    return storage.cache_key(**parts)


def read_record(path: str | Path, key: str) -> dict | None:
    """A finished unit's record, or None if absent, unreadable or from another run."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        log.warning("%s: unreadable; recomputing it", path)
        return None
    return record if isinstance(record, dict) and record.get("run_key") == key else None


def write_record(path: str | Path, record: dict, key: str) -> dict:
    """Writes ``record`` with ``run_key = key`` atomically; returns the record as written."""
    record = {**record, "run_key": key}
    storage.write_json(path, record)
    return record


def remove_tree(folder: str | Path) -> None:
    """Removes a folder of per-item outputs an earlier run wrote (nothing if absent).

    Used before a unit writes its per-item files anew, so that none of the earlier run's
    (other images, other settings) stays beside the new ones looking current.
    """
    folder = Path(folder)
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    elif folder.exists() or folder.is_symlink():
        folder.unlink()


def prune(folder: str | Path, keep: set[str], *, patterns: tuple[str, ...] = ("*",)) -> list[str]:
    """Deletes the files of ``folder`` matching ``patterns`` whose names are not in ``keep``.

    The outputs a run produces are exactly ``keep``; what an earlier run left (an image no longer
    in the dataset, an example no longer chosen, a dataset no longer run) goes.

    Returns:
      The names removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = sorted({p.name for pattern in patterns for p in folder.glob(pattern)
                      if p.is_file() and p.name not in keep})
    for name in removed:
        (folder / name).unlink()
    if removed:
        log.info("%s: removed %d file(s) of an earlier run: %s", folder, len(removed),
                 ", ".join(removed[:5]))
    return removed
