"""Result tables as text: CSV with a fixed column order, NaN-safe JSON floats."""

from __future__ import annotations

import csv
import io
from typing import Mapping, Sequence

import numpy as np


def csv_text(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    """``rows`` as CSV with a header of ``columns`` (other keys ignored), ``\\n`` line ends."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def json_floats(x) -> list:
    """A float array as a flat JSON list, NaN/inf as null (JSON has no NaN)."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(x, np.float64).ravel()]


def json_float(x) -> float | None:
    """One float for JSON, NaN/inf as None."""
    x = float(x)
    return x if np.isfinite(x) else None
