"""The Peterson release as distributed: per-category folder and variable names found by search."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import scipy.io
from make_images import real_looking

from ais_jax.data import datasets, release

N = 5


def _images(folder: Path, names, seed: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        PIL.Image.fromarray(real_looking(rng, 10, 10)).save(folder / name)
    return sorted(names)


def _sim(seed: int, n: int = N) -> np.ndarray:
    a = np.random.default_rng(seed).uniform(0, 1, (n, n))
    return (a + a.T) / 2


def _release(root: Path) -> dict:
    """Three categories, each laid out differently, with distractors the search must pass over."""
    truth = {}
    # animals: stimuli/ + data/<x>.mat holding the matrix beside non-square and other-size ones.
    cat = root / "animals"
    ids = _images(cat / "stimuli", [f"animal_{i:03d}.png" for i in (7, 2, 11, 5, 1)], 0)
    _images(cat / "thumbs", ["t1.png", "t2.png"], 1)  # 2 images: no 2 x 2 matrix, ignored
    (cat / "data").mkdir()
    h = _sim(0)
    scipy.io.savemat(cat / "data" / "turkAnimals.mat",
                     {"simMatAnimals": h, "labels_vec": np.arange(N)[None], "rot": np.eye(3)})
    (cat / "README.txt").write_text("release notes")
    (cat / "__MACOSX").mkdir()
    (cat / "__MACOSX" / "stimuli").mkdir()
    truth["animals"] = (cat / "stimuli", cat / "data" / "turkAnimals.mat", "simMatAnimals", ids, h)
    # automobiles: nested two levels, matrix variable without 'sim' in its name.
    cat = root / "automobiles"
    ids = _images(cat / "Transportation_set" / "imgs", [f"car{i}.png" for i in range(N)], 2)
    (cat / "judgments").mkdir(parents=True)
    h = _sim(1)
    scipy.io.savemat(cat / "judgments" / "ratings_matrix.mat", {"meanRating": h})
    truth["automobiles"] = (cat / "Transportation_set" / "imgs",
                            cat / "judgments" / "ratings_matrix.mat", "meanRating", ids, h)
    # fruits: images directly in the category folder, the .mat beside them.
    cat = root / "fruits"
    ids = _images(cat, ["b.png", "a.png", "e.png", "c.png", "d.png"], 3)
    h = _sim(2)
    scipy.io.savemat(cat / "fruit_data.mat", {"S": h})
    truth["fruits"] = (cat, cat / "fruit_data.mat", "S", ids, h)
    return truth


def test_release_tree_loads_with_folders_and_variables_reported(tmp_path, caplog):
    truth = _release(tmp_path)
    with caplog.at_level("INFO", logger="ais_jax.data.datasets"):
        loaded = datasets.load_peterson(tmp_path, list(truth))
    assert list(loaded) == list(truth)
    for category, (image_dir, mat, variable, ids, h) in truth.items():
        ds = loaded[category]
        assert ds.image_ids == tuple(ids)
        assert ds.image_paths == tuple(image_dir / i for i in ids)
        assert ds.matrix_path == mat and ds.kind == "similarity"
        np.testing.assert_array_equal(ds.similarity, h)
        origin = ds.manifest()["origin"]
        assert origin == {"layout": "peterson-release", "category_folder": str(tmp_path / category),
                          "image_dir": str(image_dir), "matrix_path": str(mat),
                          "variable": variable}
        line = f"{category}: images from {image_dir}, matrix {mat} variable {variable!r}"
        assert line in caplog.text
    assert loaded["automobiles"].name == "Transportation"
    # The size may be given: the release's 120 images are not in this small tree.
    found = release.find_category(tmp_path / "fruits", n_images=N)
    assert (found.variable, found.n_images) == ("S", N)
    with pytest.raises(ValueError, match=r"no image folder and square matrix .*\(120 images\)"):
        datasets.load_peterson(tmp_path, "fruits", n_images=120)


def test_reorganised_layout_still_preferred(tmp_path):
    """<category>/images + sim_judgements keeps its rules (a '*sim*' variable) and says so."""
    cat = tmp_path / "various"
    ids = _images(cat / "images", [f"v{i}.png" for i in range(N)], 4)
    (cat / "sim_judgements").mkdir()
    h = _sim(3)
    scipy.io.savemat(cat / "sim_judgements" / "various.mat", {"simMatrix": h, "other": h + 1})
    ds = datasets.load_peterson(tmp_path, "various")["various"]
    assert ds.image_ids == tuple(ids)
    np.testing.assert_array_equal(ds.similarity, h)
    assert ds.origin["layout"] == "peterson" and ds.origin["variable"] == "simMatrix"


def test_ambiguous_matrices_are_listed(tmp_path):
    truth = _release(tmp_path)
    # A second N x N variable in another file of the tree.
    scipy.io.savemat(tmp_path / "animals" / "data" / "counts.mat", {"nRatings": _sim(9) * 10})
    message = (r"animals: more than one candidate similarity matrix: "
               r".*counts\.mat:nRatings \(5x5\), .*turkAnimals\.mat:simMatAnimals \(5x5\)")
    with pytest.raises(ValueError, match=message):
        datasets.load_peterson(tmp_path, "animals")
    # ... or in the same file.
    scipy.io.savemat(tmp_path / "fruits" / "fruit_data.mat", {"S": _sim(2), "S_sd": _sim(4)})
    with pytest.raises(ValueError, match=r"fruit_data\.mat:S \(5x5\), .*fruit_data\.mat:S_sd"):
        datasets.load_peterson(tmp_path, "fruits")
    ds = datasets.load_peterson(tmp_path, "automobiles")["automobiles"]  # untouched: still loads
    np.testing.assert_array_equal(ds.similarity, truth["automobiles"][4])


def test_ambiguous_image_folders_are_listed(tmp_path):
    _release(tmp_path)
    _images(tmp_path / "automobiles" / "Transportation_set" / "imgs_large",
            [f"car{i}.png" for i in range(N)], 5)
    message = (r"automobiles: more than one candidate image folder: .*imgs \(5 images\), "
               r".*imgs_large \(5 images\)")
    with pytest.raises(ValueError, match=message):
        datasets.load_peterson(tmp_path, "automobiles")


def test_nothing_matching_lists_what_was_found(tmp_path):
    cat = tmp_path / "vegetables"
    _images(cat / "pics", [f"veg{i}.png" for i in range(N)], 6)
    scipy.io.savemat(cat / "sims.mat", {"S": _sim(5, N + 1)})  # 6 x 6 for 5 images
    (cat / "broken.mat").write_bytes(b"not a MATLAB file")
    message = (r"vegetables: no image folder and square matrix of matching size .*"
               r"image folders: .*pics \(5 images\); square matrices: .*sims\.mat:S \(6x6\); "
               r"unreadable \.mat files: .*broken\.mat")
    with pytest.raises(ValueError, match=message):
        datasets.load_peterson(tmp_path, "vegetables")


def test_unreadable_mat_is_recorded_when_a_match_exists(tmp_path, caplog):
    truth = _release(tmp_path)
    (tmp_path / "fruits" / "notes.mat").write_bytes(b"garbage")
    with caplog.at_level("WARNING", logger="ais_jax.data.release"):
        found = release.find_category(tmp_path / "fruits")
    assert found.matrix_path == truth["fruits"][1]
    assert len(found.skipped) == 1 and "notes.mat" in found.skipped[0]
    assert "could not search" in caplog.text


def test_category_folder_found_below_the_root_or_by_alias(tmp_path):
    truth = _release(tmp_path / "peterson_2018" / "data")
    (tmp_path / "peterson_2018" / "data" / "automobiles").rename(
        tmp_path / "peterson_2018" / "data" / "Transportation")
    loaded = datasets.load_peterson(tmp_path, ["animals", "automobiles"])
    assert loaded["animals"].image_ids == tuple(truth["animals"][3])
    assert loaded["automobiles"].origin["category_folder"] == str(
        tmp_path / "peterson_2018" / "data" / "Transportation")
    (tmp_path / "copy" / "animals").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"more than one folder for category 'animals'"):
        datasets.load_peterson(tmp_path, "animals")
    with pytest.raises(FileNotFoundError, match=r"furniture: category folder not found.*holds: "
                                                r"copy, peterson_2018"):
        datasets.load_peterson(tmp_path, "furniture")
