"""The one runner over models x datasets that Aim 1, Aim 2 and Aim 3 plug into.

An aim is an `Aim`: a per-(model, dataset) step, called with a `StudyItem` (its output folder,
dataset, model and lazily cached trunk activations / ablation similarities) and returning a
results row, and an across-datasets step, called with the `Study` and all rows. `run_study`:

1. checks the config (`StudyConfig.validate`), loads and validates every dataset (matrices,
   images, aspect ratios, size) and every model's weights -- anything wrong with the user's
   input fails here, before anything is written;
2. writes ``<out>/run.json`` (config, checkpoints, datasets, versions);
3. calls the per-(model, dataset) step for every model (outer) and dataset (inner), after
   writing the item folder's ``image_ids.txt`` (the row order of every per-image array there)
   and, with ``config.rsatoolbox``, its rsatoolbox RDM files;
4. calls the across-datasets step and returns what it returns, after writing
   ``<out>/report.html`` from the folder (`ais_jax.report.html`, for Aim 1, 2 and 3) unless
   ``config.report`` is off.

Resuming is the steps' business, with `ais_jax.resume` (one JSON record per finished
unit, keyed by a run key).
"""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import flax
import jax
import numpy as np
import scipy

import ais_jax
from ais_jax import preflight, storage
from ais_jax.data.datasets import Dataset
from ais_jax.data.files import write_image_ids
from ais_jax.data.images import PREPROCESS_VERSION
from ais_jax.report import html
from ais_jax.study.config import StudyConfig
from ais_jax.study.inputs import LoadedModel, load_datasets, load_models
from ais_jax.study.item import StudyItem


def versions(**extra: Any) -> dict:
    """Library versions, preprocessing version and backend, plus an aim's own ``extra``."""
    return {
        "ais_jax": ais_jax.__version__, "jax": jax.__version__, "flax": flax.__version__,
        "numpy": np.__version__, "scipy": scipy.__version__, "python": platform.python_version(),
        "preprocess_version": PREPROCESS_VERSION, "backend": jax.default_backend(), **extra,
    }


@dataclasses.dataclass(frozen=True)
class Study:
    """A validated run: its config, loaded models and datasets.

    Attributes:
      config: the run's configuration (a `StudyConfig` or an aim's subclass).
      models: loaded checkpoints, in ``config.models`` order.
      datasets: ``(key, Dataset)`` pairs, in loading order.
    """

    config: StudyConfig
    models: tuple[LoadedModel, ...]
    datasets: tuple[tuple[str, Dataset], ...]

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    def items(self) -> Iterator[StudyItem]:
        """Every (model, dataset), model-major, each a fresh `StudyItem`."""
        for model in self.models:
            for key, ds in self.datasets:
                yield StudyItem(model, key, ds, self.config)

    def item(self, model_label: str, key: str) -> StudyItem:
        """The `StudyItem` of one model label and dataset key (KeyError if absent)."""
        model = {m.label: m for m in self.models}[model_label]
        return StudyItem(model, key, dict(self.datasets)[key], self.config)


@dataclasses.dataclass(frozen=True)
class Aim:
    """What an aim supplies to `run_study`.

    Attributes:
      name: short name (``'aim1'``), recorded in progress messages.
      per_dataset: ``step(item) -> row``: all work of one (model, dataset); writes under
        ``item.out`` and returns a dict (its results row, may hold arrays).
      across_datasets: ``step(study, rows) -> result``: tables, figures and summary over all
        rows (model-major order); its return value is `run_study`'s.
      versions: extra entries for ``run.json``'s ``versions`` (e.g. a record format version).
    """

    name: str
    per_dataset: Callable[[StudyItem], dict]
    across_datasets: Callable[["Study", list[dict]], Any]
    versions: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def prepare_study(config: StudyConfig) -> Study:
    """Validates ``config`` and loads its datasets and models; writes nothing.

    Raises:
      MissingWeightsError, FileNotFoundError, ValueError: bad input, naming the flag or file.
      ais_jax.storage.WriteError: ``config.out`` is a file or not writable.
    """
    config.validate()
    # Outputs inside the data would be read as data next time; an unwritable --out must fail
    # now, not after the trunk has run.
    preflight.check_out_dir(config.out, data=[config.data_dir], refuse_containing=False)
    datasets = load_datasets(config)
    models = load_models(config)
    return Study(config, tuple(models), tuple(datasets))


def write_run_json(study: Study, extra_versions: Mapping[str, Any] = {},
                   aim: str | None = None) -> Path:
    """Writes ``<out>/run.json``: the aim, config, checkpoints, dataset manifests, versions."""
    path = study.out / "run.json"
    storage.write_json(path, {
        **({"aim": aim} if aim is not None else {}),
        "config": dataclasses.asdict(study.config),
        "checkpoints": {m.label: {"source": m.source, "source_sha256": m.checkpoint_sha256,
                                  "metadata": m.metadata} for m in study.models},
        "datasets": {key: d.manifest() for key, d in study.datasets},
        "versions": versions(**extra_versions),
    })
    return path


def run_study(config: StudyConfig, aim: Aim, *, study: Study | None = None) -> Any:
    """Runs ``aim`` over every model and dataset of ``config`` (see the module docstring).

    Args:
      config: the run.
      aim: the per-(model, dataset) and across-datasets steps.
      study: an already prepared `prepare_study(config)` (to reuse loaded models).

    Returns:
      Whatever ``aim.across_datasets`` returns.

    Raises:
      MissingWeightsError, FileNotFoundError, ValueError: bad input, before anything is written.
    """
    study = study if study is not None else prepare_study(config)
    preflight.check_aim_folder(study.out, aim.name)  # another aim's results: not overwritten
    write_run_json(study, aim.versions, aim.name)
    rows: list[dict] = []
    for item in study.items():
        write_image_ids(item.out, item.image_ids)
        if study.config.rsatoolbox:
            from ais_jax.interop import rsatoolbox  # noqa: PLC0415 (optional extra)

            rsatoolbox.export_item(item)
        rows.append(aim.per_dataset(item))
    result = aim.across_datasets(study, rows)
    if study.config.report and aim.name in html.AIM_NAMES:
        html.write_report(study.out)
    return result


def rows_by_dataset(rows: Sequence[dict]) -> dict[str, list[dict]]:
    """Groups results rows by their ``'dataset'`` key, keeping the order of first appearance."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["dataset"], []).append(r)
    return out
