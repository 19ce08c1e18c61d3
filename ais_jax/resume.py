"""Resumable results: one JSON record per finished unit of work, keyed by what it depends on.

A record carries a ``run_key`` (a hash of every input the result depends on). A record is
reused only when its key matches, so a changed input, setting or format version recomputes it,
and an interrupted run restarts at the first unit without a matching record.
"""

from __future__ import annotations

import hashlib
import json
import logging
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
