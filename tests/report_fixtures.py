"""A generated Aim 2 results folder (no network run): what `ais_jax.report.html` reads, at any size.

`generated_aim2(out, datasets, images, models)` writes run.json, per model and dataset the
per_image.csv, image_ids.json, heatmaps_grid.npy, per_image_ais.npy and overlays/, and per
dataset match_<key>.csv (two models; one match_<key>_<a>_vs_<b>.csv per pair of three or
more), with random numbers (some undefined heatmaps, a NaN Match) and small
random pictures. For the page's tests with many models and for timing a large gallery::

    python tests/report_fixtures.py /tmp/gallery720 --datasets=6 --images=120 --models=2
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import PIL.Image

from ais_jax.report.tables import csv_text

GRID = (4, 5)


def _picture(rng: np.random.Generator, path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    small = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    PIL.Image.fromarray(small).resize((size[1], size[0]), PIL.Image.Resampling.BILINEAR).save(path)


def generated_aim2(out: Path, *, datasets: int = 2, images: int = 6, models: int = 3,
                   size: tuple[int, int] = (240, 320), seed: int = 0) -> dict:
    """Writes the folder; returns ``{'ids': {key: [image ids]}, 'labels': [...]}``."""
    rng = np.random.default_rng(seed)
    labels = [f"model_{chr(97 + m)}" for m in range(models)]
    keys = [f"set{d}" for d in range(datasets)]
    ids = {k: [f"{k}_img{i:03d}.png" for i in range(images)] for k in keys}
    manifests = {}
    for k in keys:
        for i in ids[k]:
            _picture(rng, out / "data" / k / i, size)
        manifests[k] = {"image_dir": str(out / "data" / k), "image_ids": ids[k], "name": k,
                        "n_images": images}
    for label in labels:
        for k in keys:
            folder = out / label / k
            undefined = [ids[k][0]] if label == labels[-1] else []
            grid = rng.random((images, *GRID)).astype(np.float32)
            folder.mkdir(parents=True)
            np.save(folder / "heatmaps_grid.npy", grid)
            np.save(folder / "per_image_ais.npy", rng.standard_normal((images, 512)))
            (folder / "image_ids.json").write_text(json.dumps({
                "image_ids": ids[k], "files": [Path(i).stem for i in ids[k]],
                "sizes": [list(size)] * images, "undefined": undefined}))
            rows = [{"image_id": i, "height": size[0], "width": size[1],
                     "defined": i not in undefined, "mad": float(rng.random()),
                     "entropy": float(6 + rng.random())} for i in ids[k]]
            (folder / "per_image.csv").write_text(csv_text(rows, list(rows[0])))
            for i in ids[k]:
                _picture(rng, folder / "overlays" / f"{Path(i).stem}.png", size)
    pairs = list(itertools.combinations(labels, 2))
    for k in keys:  # as Aim 2 names them: match_<key>.csv, or one file per pair of 3+ models
        for a, b in pairs:
            match = rng.random(images)
            match[1] = np.nan
            rows = [{"image_id": i, "match": float(m), "max_entropy": float(6 + rng.random())}
                    for i, m in zip(ids[k], match, strict=True)]
            name = f"match_{k}.csv" if len(pairs) == 1 else f"match_{k}_{a}_vs_{b}.csv"
            (out / name).write_text(csv_text(rows, list(rows[0])))
    (out / "run.json").write_text(json.dumps({
        "config": {"out": str(out), "models": [[m, "generated"] for m in labels],
                   "colormap": "jet"},
        "datasets": manifests, "versions": {"aim2_format_version": 1}}))
    return {"ids": ids, "labels": labels}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--datasets", type=int, default=6)
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--models", type=int, default=2)
    a = parser.parse_args()
    generated_aim2(a.out, datasets=a.datasets, images=a.images, models=a.models)
