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

from ais_jax import weights

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
    reported = set()  # targets with a problem listed already: not "missing" as well
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
            reported.add(target)
        elif target in out:
            problems.append(f"{key}: maps to {target}, already filled by {origin[target]}")
        else:
            array = LAYOUTS[rule.layout](array)
            if array.shape != tuple(expected[target]):
                problems.append(
                    f"{key}: shape {tuple(np.shape(value))} does not fit {target} "
                    f"(expected {tuple(expected[target])} after the {rule.layout!r} layout)"
                )
                reported.add(target)
            else:
                out[target], origin[target] = np.ascontiguousarray(array, np.float32), key
    problems += [f"missing tensor for {t} (shape {tuple(expected[t])})" for t in expected
                 if t not in out and t not in reported]
    if problems:
        raise ConversionError(source, problems)
    return traverse_util.unflatten_dict(out, sep="/")


# path -> shape of a nested tree of arrays or ShapeDtypeStructs: the `expected` of `convert`.
# Defined once in ais_jax.weights, which checks converted files with it.
expected_shapes = weights.flat_shapes
