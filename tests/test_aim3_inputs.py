"""Saliency maps matched to heatmaps by image id; every missing or mis-sized map named at once."""

import numpy as np
import PIL.Image
import pytest

from ais_jax.explain.saliency_inputs import match_saliency


def test_match_saliency_reads_in_heatmap_order(tmp_path):
    maps = {"b": np.full((3, 5), 0.2, np.float32), "a": np.arange(15, dtype=np.float32
                                                                    ).reshape(5, 3)}
    np.save(tmp_path / "b.npy", maps["b"])
    PIL.Image.fromarray(np.uint8(maps["a"] * 10)).save(tmp_path / "a.png")
    got = match_saliency(tmp_path, ["b.jpg", "a"], [(3, 5), (5, 3)])
    np.testing.assert_array_equal(got[0], maps["b"])
    np.testing.assert_allclose(got[1], maps["a"] * 10 / 255, atol=1e-7)


def test_match_saliency_names_every_problem_and_the_command(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((3, 5), np.float32))
    np.save(tmp_path / "swapped.npy", np.zeros((5, 3), np.float32))  # width and height swapped
    ids = ["ok", "swapped", "gone1", "gone2"]
    shapes = [(3, 5)] * 4
    with pytest.raises(ValueError) as err:
        match_saliency(tmp_path, ids, shapes, data_dir="/data/imgs")
    msg = str(err.value)
    assert "swapped" in msg and "(5, 3)" in msg and "height and width swapped" in msg
    assert "gone1" in msg and "gone2" in msg and "no saliency map for 2 of 4" in msg
    assert f"python -m experiments.saliency --data_dir=/data/imgs --out={tmp_path}" in msg
    with pytest.raises(FileNotFoundError, match="gone1.*gone2.*experiments.saliency"):
        match_saliency(tmp_path, ["ok", "gone1", "gone2"], [(3, 5)] * 3)
    with pytest.raises(FileNotFoundError, match="no such saliency-map folder.*--out="):
        match_saliency(tmp_path / "nope", ["ok"], [(3, 5)])
    with pytest.raises(ValueError, match="share the name"):
        match_saliency(tmp_path, ["ok.png", "ok.jpg"], [(3, 5)] * 2)
