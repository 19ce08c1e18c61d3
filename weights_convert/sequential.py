"""torchvision's ``features`` / ``classifier`` networks (VGG-16, VGG-19, AlexNet) -> Flax
parameters, as key rules: one `SequentialLayout` per network, written as data.

``features.{i}.weight`` (conv, OIHW -> HWIO) and ``.bias`` go to ``trunk/{name}/...``;
``classifier.{i}.weight`` (``[out, in]`` -> ``[in, out]``) and ``.bias`` to ``head/{name}/...``.
fc6's transpose keeps its rows in torch's (C, H, W) flatten order, which
`ais_jax.models.vgg16.VGG16Head` expects.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import numpy as np

from weights_convert.keymap import ConversionError, Rule, convert, expected_shapes


@dataclasses.dataclass(frozen=True)
class SequentialLayout:
    """Where one torchvision ``features`` / ``classifier`` network keeps each tensor.

    Attributes:
      title: the network's name in messages (``'VGG-16'``).
      feature_index: Flax trunk layer -> its index in ``features``.
      classifier_index: ``{'fc6': i, 'fc7': j, 'fc8': k}``: indices in ``classifier``.
      param_shapes: ``num_classes ->`` the Flax parameter shapes (``{'trunk', 'head'}``).
    """

    title: str
    feature_index: Mapping[str, int]
    classifier_index: Mapping[str, int]
    param_shapes: Callable[[int], dict]

    @property
    def rules(self) -> tuple[Rule, ...]:
        """One rule per weight and bias of every layer."""
        conv = [(rf"features\.{i}", f"trunk/{name}", "conv")
                for name, i in self.feature_index.items()]
        linear = [(rf"classifier\.{i}", f"head/{name}", "linear")
                  for name, i in self.classifier_index.items()]
        return tuple(Rule(rf"{src}\.weight", f"{dst}/kernel", layout)
                     for src, dst, layout in conv + linear) + tuple(
            Rule(rf"{src}\.bias", f"{dst}/bias") for src, dst, _ in conv + linear)

    @property
    def fc8_key(self) -> str:
        return f"classifier.{self.classifier_index['fc8']}.weight"

    def num_classes(self, state_dict: Mapping[str, np.ndarray], *, source: str) -> int:
        """The number of classes, read from the fc8 weight (``[classes, 4096]``).

        Raises:
          ConversionError: if the key is missing or not a matrix; a checkpoint without any
            ``features.`` / ``classifier.`` key gets the top message "not a(n) <title> checkpoint".
        """
        key = self.fc8_key
        if key in state_dict and np.ndim(state_dict[key]) == 2:
            return int(np.shape(state_dict[key])[0])
        problem = (f"{key}: shape {tuple(np.shape(state_dict[key]))}, expected "
                   "[classes, 4096]") if key in state_dict else f"{key}: missing"
        raise ConversionError(source, [*self.not_this_network(state_dict), problem])

    def not_this_network(self, state_dict: Mapping[str, np.ndarray]) -> list[str]:
        """A leading problem line when no key looks like a torchvision ``features`` /
        ``classifier`` network."""
        if any(key.startswith(("features.", "classifier.")) for key in state_dict):
            return []
        keys = list(state_dict)
        shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
        article = "an" if self.title[0] in "AEIOU" else "a"
        return [
            f"not {article} {self.title} checkpoint: none of its {len(keys)} keys is a torchvision "
            f"{self.title} key (features.N.*, classifier.N.*); it has {shown or 'no keys'}"
        ]

    def convert_state_dict(self, state_dict: Mapping[str, np.ndarray], *, source: str) -> dict:
        """Converts a torchvision-layout state dict of this network (any number of classes).

        Args:
          state_dict: key -> array, e.g. from `weights_convert.checkpoint.read_state_dict`.
          source: the checkpoint file, named in errors.

        Returns:
          ``{'trunk': {layer: {'kernel': HWIO, 'bias'}}, 'head': {'fc6', 'fc7', 'fc8'}}``,
          float32.

        Raises:
          ConversionError: listing every unknown, missing or mis-shaped tensor by key.
        """
        classes = self.num_classes(state_dict, source=source)
        expected = expected_shapes(self.param_shapes(classes))
        try:
            return convert(state_dict, self.rules, expected, source=source)
        except ConversionError as e:
            raise ConversionError(
                source, [*self.not_this_network(state_dict), *e.problems]) from None
