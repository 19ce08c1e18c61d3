"""Regenerates the README's pictures under docs/img/ from the Aim 1 and Aim 2 demos.

    python docs/make_images.py                    # runs both demos in a temporary folder
    python docs/make_images.py --aim1_out=results/demo --aim2_out=results/aim2_demo
                                                  # reuses demo outputs you already have

Writes docs/img/figure1.png (Aim 1's Figure 1) and docs/img/overlay.png (the first image's AIS
heatmap overlay of the Aim 2 demo's first network), each at most WIDTH pixels wide.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
WIDTH = 640


def _demo(aim: str, out: Path) -> Path:
    subprocess.run([sys.executable, "-m", f"experiments.{aim}", "--demo", f"--out={out}"],
                   cwd=ROOT, check=True)
    return out


def _save(src: Path, name: str) -> None:
    image = Image.open(src).convert("RGB")
    if image.width > WIDTH:
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
    IMG.mkdir(parents=True, exist_ok=True)
    image.save(IMG / name, optimize=True)
    print(f"wrote {IMG / name} ({image.width} x {image.height}) from {src}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aim1_out", type=Path, help="an existing Aim 1 demo folder")
    parser.add_argument("--aim2_out", type=Path, help="an existing Aim 2 demo folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        aim1 = args.aim1_out or _demo("aim1", Path(tmp) / "aim1")
        aim2 = args.aim2_out or _demo("aim2", Path(tmp) / "aim2")
        _save(aim1 / "figure1.png", "figure1.png")
        overlays = sorted(aim2.glob("*/*/overlays/*.png"))
        if not overlays:
            sys.exit(f"error: {aim2}: no overlays/*.png under <model>/<dataset>/")
        _save(overlays[0], "overlay.png")


if __name__ == "__main__":
    main()
