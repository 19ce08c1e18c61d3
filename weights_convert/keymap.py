"""Checkpoint conversion written as data: source-key rules -> Flax parameter paths.

Every tensor is matched by exactly one rule, transposed by the rule's layout and checked against
the shape the Flax model expects; all problems are collected and raised together, each naming
the offending key.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Iterable, Mapping

import numpy as np
from flax import traverse_util

# Torch layout -> Flax layout.
LAYOUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "same": lambda a: a,
    "conv": lambda a: a.transpose(2, 3, 1, 0) if a.ndim == 4 else a,  # OIHW -> HWIO
    "linear": lambda a: a.T if a.ndim == 2 else a,  # [out, in] -> [in, out]
}


class ConversionError(ValueError):
    """A checkpoint does not fit the target model; the message lists every problem."""

    def __init__(self, source: str, problems: Iterable[str]):
        self.problems = list(problems)
        shown = self.problems[:25]
        more = len(self.problems) - len(shown)
        lines = [f"{source}: cannot convert ({len(self.problems)} problem(s)):"]
        lines += [f"  - {p}" for p in shown]
        if more:
            lines.append(f"  ... and {more} more")
        super().__init__("\n".join(lines))


@dataclasses.dataclass(frozen=True)
class Rule:
    """One source-key pattern (full match) -> a '/'-separated target path (may use \\1 ...)."""

    pattern: str
    target: str
    layout: str = "same"


def convert(
    state_dict: Mapping[str, np.ndarray],
    rules: Iterable[Rule],
    expected: Mapping[str, tuple[int, ...]],
    *,
    source: str,
    ignore: Iterable[str] = (),
) -> dict:
    """Maps a flat torch state dict onto a nested Flax parameter pytree.

    Args:
      state_dict: source key -> array (NumPy, already off torch).
      rules: key rules; the first rule whose pattern fully matches a key is used.
      expected: target path -> shape, the Flax model's parameters (all must be filled).
      source: what to name in errors (the checkpoint file).
      ignore: patterns of source keys to drop silently (e.g. ``num_batches_tracked``).

    Returns:
      Nested dict of float32 arrays with exactly the ``expected`` paths.

    Raises:
      ConversionError: listing every unknown, duplicate, non-float, mis-shaped or missing tensor.
    """
    rules, ignore = list(rules), [re.compile(p) for p in ignore]
    problems, out, origin = [], {}, {}
    for key, value in state_dict.items():
        if any(p.fullmatch(key) for p in ignore):
            continue
        match = next(((r, m) for r in rules if (m := re.fullmatch(r.pattern, key))), None)
        if match is None:
            problems.append(f"{key}: unexpected key")
            continue
        rule, m = match
        target = m.expand(rule.target)
        array = np.asarray(value)
        if target not in expected:
            problems.append(f"{key}: maps to {target}, which the model does not have")
        elif not np.issubdtype(array.dtype, np.floating):
            problems.append(f"{key}: dtype {array.dtype}, expected a floating-point tensor")
        elif target in out:
            problems.append(f"{key}: maps to {target}, already filled by {origin[target]}")
        else:
            array = LAYOUTS[rule.layout](array)
            if array.shape != tuple(expected[target]):
                problems.append(
                    f"{key}: shape {tuple(np.shape(value))} does not fit {target} "
                    f"(expected {tuple(expected[target])} after the {rule.layout!r} layout)"
                )
            else:
                out[target], origin[target] = np.ascontiguousarray(array, np.float32), key
    problems += [f"missing tensor for {t} (shape {tuple(expected[t])})" for t in expected
                 if t not in out and not any(t in p for p in problems)]
    if problems:
        raise ConversionError(source, problems)
    return traverse_util.unflatten_dict(out, sep="/")


def expected_shapes(shape_tree: Mapping) -> dict[str, tuple[int, ...]]:
    """Flattens a (nested) tree of arrays or ShapeDtypeStructs to path -> shape."""
    flat = traverse_util.flatten_dict(dict(shape_tree), sep="/")
    return {k: tuple(v.shape) for k, v in flat.items()}
