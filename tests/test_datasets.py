"""Dataset loading: the Peterson layout, the plain layout, and every validation error."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import scipy.io
from make_images import real_looking

from ais_jax.data import datasets

# Written in this (unsorted) order; note the mixed-case extension.
_NAMES = ["im_03.png", "im_01.JPG", "im_10.jpeg", "im_02.bmp"]
_SORTED = ["im_01.JPG", "im_02.bmp", "im_03.png", "im_10.jpeg"]


def _symmetric(n: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).uniform(0, 10, (n, n))
    h = (a + a.T) / 2
    np.fill_diagonal(h, 10.0)
    return h


def _image_folder(folder: Path, seed: int = 0, names=_NAMES) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in names:
        fmt = {"jpg": "JPEG", "jpeg": "JPEG"}.get(name.rsplit(".", 1)[1].lower())
        PIL.Image.fromarray(real_looking(rng, 12, 12)).save(folder / name, format=fmt)
    (folder / "notes.txt").write_text("not an image")
    (folder / "._im_00.jpg").write_bytes(b"macOS metadata")
    (folder / "sub.png").mkdir()
    return folder


def _peterson(root: Path, categories, seed: int = 0) -> dict[str, np.ndarray]:
    matrices = {}
    for k, category in enumerate(categories):
        _image_folder(root / category / "images", seed + k)
        sims = root / category / "sim_judgements"
        sims.mkdir()
        matrices[category] = _symmetric(len(_NAMES), seed + k)
        scipy.io.savemat(sims / f"{category}_simmat.mat", {"simMatrix": matrices[category]})
        (sims / "ratings.pickle").write_bytes(b"\x80\x04N.")
    return matrices


def test_peterson_layout(tmp_path):
    matrices = _peterson(tmp_path, ["automobiles", "animals"])
    loaded = datasets.load_peterson(tmp_path, ["automobiles", "animals"])
    assert list(loaded) == ["automobiles", "animals"]
    ds = loaded["automobiles"]
    assert ds.name == "Transportation" and loaded["animals"].name == "Animals"
    assert ds.image_ids == tuple(_SORTED)
    assert ds.image_paths == tuple(tmp_path / "automobiles" / "images" / n for n in _SORTED)
    assert ds.kind == "similarity" and ds.asymmetry == 0.0 and not ds.symmetrized
    assert ds.matrix_path == tmp_path / "automobiles" / "sim_judgements" / "automobiles_simmat.mat"
    assert ds.similarity.dtype == np.float64
    np.testing.assert_array_equal(ds.similarity, matrices["automobiles"])
    np.testing.assert_array_equal(loaded["animals"].similarity, matrices["animals"])
    with pytest.raises(ValueError):
        ds.similarity[0, 1] = 0.0  # read-only

    one = datasets.load_peterson(str(tmp_path), "animals")
    assert list(one) == ["animals"]


def test_peterson_all_categories_by_default(tmp_path):
    _peterson(tmp_path, datasets.PETERSON_CATEGORIES)
    loaded = datasets.load_peterson(tmp_path)
    assert tuple(loaded) == datasets.PETERSON_CATEGORIES
    assert [d.name for d in loaded.values()] == [
        "Animals", "Transportation", "Fruits", "Furniture", "Various", "Vegetables"
    ]


def test_peterson_missing_root_and_category(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere: Peterson data folder not found"):
        datasets.load_peterson(tmp_path / "nowhere")
    _peterson(tmp_path, ["animals", "fruits"])
    message = r"furniture: category folder not found.*holds: animals, fruits"
    with pytest.raises(FileNotFoundError, match=message):
        datasets.load_peterson(tmp_path, ["animals", "furniture"])
    with pytest.raises(FileNotFoundError, match="automobiles: category folder not found"):
        datasets.load_peterson(tmp_path)  # all six by default


def test_peterson_matrix_choice_and_errors(tmp_path):
    _peterson(tmp_path, ["fruits"])
    sims = tmp_path / "fruits" / "sim_judgements"
    h = _symmetric(4, 0)

    # An extra file without 'sim' in its name is passed over when a '*sim*.mat' file exists.
    scipy.io.savemat(sims / "extra.mat", {"simOther": h + 1})
    np.testing.assert_array_equal(
        datasets.load_peterson(tmp_path, ["fruits"])["fruits"].similarity,
        scipy.io.loadmat(sims / "fruits_simmat.mat")["simMatrix"],
    )
    scipy.io.savemat(sims / "fruits_simmat.mat", {"simMatrix": h, "simMatrix2": h})
    with pytest.raises(ValueError, match=r"more than one 2-D variable .*simMatrix2"):
        datasets.load_peterson(tmp_path, ["fruits"])
    (sims / "extra.mat").unlink()
    scipy.io.savemat(sims / "fruits_simmat.mat", {"ratings": h})
    message = r"no 2-D variable whose name contains 'sim'.*ratings \(4, 4\)"
    with pytest.raises(ValueError, match=message):
        datasets.load_peterson(tmp_path, ["fruits"])
    (sims / "fruits_simmat.mat").unlink()
    message = r"sim_judgements: no \.mat file \(found: ratings\.pickle\)"
    with pytest.raises(FileNotFoundError, match=message):
        datasets.load_peterson(tmp_path, ["fruits"])


def _v73_header() -> bytes:
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 ."
    return text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM" + b"\x00" * 384


def test_mat_v73_and_garbage(tmp_path):
    images = _image_folder(tmp_path / "images")
    (tmp_path / "v73.mat").write_bytes(_v73_header())
    with pytest.raises(ValueError, match=r"v73\.mat: MATLAB v7\.3 \(HDF5\).*'-v7'"):
        datasets.load_plain(images, tmp_path / "v73.mat", kind="similarity")
    _peterson(tmp_path / "root", ["animals"])
    (tmp_path / "root/animals/sim_judgements/animals_simmat.mat").write_bytes(_v73_header())
    with pytest.raises(ValueError, match="MATLAB v7.3"):
        datasets.load_peterson(tmp_path / "root", ["animals"])
    (tmp_path / "junk.mat").write_bytes(b"\x01\x02 junk bytes that are not a MATLAB file" * 10)
    with pytest.raises(ValueError, match=r"junk\.mat: cannot read MATLAB file"):
        datasets.load_plain(images, tmp_path / "junk.mat", kind="similarity")


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".mat"])
def test_plain_layout_formats(suffix, tmp_path):
    images = _image_folder(tmp_path / "my_set")
    h = _symmetric(4, 1)
    path = tmp_path / f"judgements{suffix}"
    if suffix == ".npy":
        np.save(path, h)
    elif suffix == ".csv":
        np.savetxt(path, h, delimiter=",", fmt="%.17g")
    else:
        scipy.io.savemat(path, {"anything": h})
    ds = datasets.load_plain(images, path, kind="similarity")
    assert ds.name == "my_set" and ds.image_ids == tuple(_SORTED)
    assert ds.matrix_path == path and ds.kind == "similarity"
    np.testing.assert_array_equal(ds.similarity, h)
    assert datasets.load_plain(images, path, kind="similarity", name="Mine").name == "Mine"


def test_dissimilarity_is_sign_flipped(tmp_path):
    images = _image_folder(tmp_path / "images")
    d = _symmetric(4, 2)
    np.fill_diagonal(d, 0.0)
    np.save(tmp_path / "dist.npy", d)
    ds = datasets.load_plain(images, tmp_path / "dist.npy", kind="dissimilarity")
    assert ds.kind == "dissimilarity"
    np.testing.assert_array_equal(ds.similarity, -d)


def test_kind_is_required_and_checked(tmp_path):
    images = _image_folder(tmp_path / "images")
    np.save(tmp_path / "h.npy", _symmetric(4, 0))
    with pytest.raises(TypeError, match="kind"):
        datasets.load_plain(images, tmp_path / "h.npy")
    message = r"h\.npy: kind must be 'similarity' or 'dissimilarity', got 'distance'"
    with pytest.raises(ValueError, match=message):
        datasets.load_plain(images, tmp_path / "h.npy", kind="distance")


def test_asymmetry_reported_and_symmetrize(tmp_path):
    images = _image_folder(tmp_path / "images")
    h = _symmetric(4, 3)
    h[1, 3] += 0.25
    h[2, 0] -= 0.5
    np.save(tmp_path / "asym.npy", h)
    with pytest.raises(
        ValueError,
        match=r"asym\.npy: matrix is not symmetric: max \|H - H\^T\| = 0\.5 \(row 0, column 2\)"
        r".*symmetrize=True",
    ):
        datasets.load_plain(images, tmp_path / "asym.npy", kind="similarity")
    ds = datasets.load_plain(images, tmp_path / "asym.npy", kind="dissimilarity", symmetrize=True)
    assert ds.asymmetry == pytest.approx(0.5, abs=1e-12) and ds.symmetrized
    np.testing.assert_allclose(ds.similarity, -(h + h.T) / 2, rtol=0, atol=1e-15)
    assert ds.manifest()["symmetrized"] is True

    # Round-off far below the tolerance is accepted and reported, the matrix kept as read.
    h = _symmetric(4, 4)
    h[0, 1] += 1e-12
    np.save(tmp_path / "nearly.npy", h)
    ds = datasets.load_plain(images, tmp_path / "nearly.npy", kind="similarity")
    assert 0 < ds.asymmetry < 1e-11 and not ds.symmetrized
    np.testing.assert_array_equal(ds.similarity, h)


def test_diagonal_is_ignored(tmp_path):
    images = _image_folder(tmp_path / "images")
    h = _symmetric(4, 5)
    h[np.diag_indices(4)] = [np.nan, 1.0, np.inf, 2.0]
    np.save(tmp_path / "h.npy", h)
    ds = datasets.load_plain(images, tmp_path / "h.npy", kind="similarity")
    np.testing.assert_array_equal(np.diag(ds.similarity), [0.0, 1.0, 0.0, 2.0])
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_array_equal(ds.similarity[off], h[off])


@pytest.mark.parametrize(
    "matrix, message",
    [
        (np.zeros((4, 3)), r"m\.npy: matrix has shape \(4, 3\); expected a square n x n matrix"),
        (np.zeros(4), r"m\.npy: matrix has shape \(4,\); expected a square"),
        (np.zeros((5, 5)), r"m\.npy: matrix is 5 x 5 but there are 4 images"),
        (np.zeros((3, 3)), r"m\.npy: matrix is 3 x 3 but there are 4 images"),
    ],
)
def test_shape_errors(matrix, message, tmp_path):
    images = _image_folder(tmp_path / "images")
    np.save(tmp_path / "m.npy", matrix)
    with pytest.raises(ValueError, match=message):
        datasets.load_plain(images, tmp_path / "m.npy", kind="similarity")


def test_non_finite_entries(tmp_path):
    images = _image_folder(tmp_path / "images")
    h = _symmetric(4, 6)
    h[1, 2] = h[2, 1] = np.nan
    h[3, 0] = np.inf
    np.save(tmp_path / "m.npy", h)
    with pytest.raises(
        ValueError,
        match=r"m\.npy: 3 non-finite off-diagonal entries \(first at row 1, column 2: nan\)",
    ):
        datasets.load_plain(images, tmp_path / "m.npy", kind="similarity")


def test_file_errors(tmp_path):
    images = _image_folder(tmp_path / "images")
    h = _symmetric(4, 7)
    with pytest.raises(FileNotFoundError, match=r"missing\.npy: matrix file not found"):
        datasets.load_plain(images, tmp_path / "missing.npy", kind="similarity")
    np.savetxt(tmp_path / "m.txt", h)
    with pytest.raises(ValueError, match=r"m\.txt: unsupported matrix format '\.txt'"):
        datasets.load_plain(images, tmp_path / "m.txt", kind="similarity")
    (tmp_path / "header.csv").write_text("a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in h))
    with pytest.raises(ValueError, match=r"header\.csv: cannot read as comma-separated numbers"):
        datasets.load_plain(images, tmp_path / "header.csv", kind="similarity")
    np.save(tmp_path / "text.npy", np.array([["a"] * 4] * 4))
    with pytest.raises(ValueError, match=r"text\.npy: matrix must be real numbers"):
        datasets.load_plain(images, tmp_path / "text.npy", kind="similarity")
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"broken\.npy: cannot read \.npy file"):
        datasets.load_plain(images, tmp_path / "broken.npy", kind="similarity")
    scipy.io.savemat(tmp_path / "two.mat", {"a": h, "b": h})
    message = r"two\.mat: expected exactly one 2-D numeric variable, found: a \(4, 4\), b \(4, 4\)"
    with pytest.raises(ValueError, match=message):
        datasets.load_plain(images, tmp_path / "two.mat", kind="similarity")

    np.save(tmp_path / "h.npy", h)
    with pytest.raises(FileNotFoundError, match="nope: image folder not found"):
        datasets.load_plain(tmp_path / "nope", tmp_path / "h.npy", kind="similarity")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"empty: no image files \(\.jpg"):
        datasets.load_plain(tmp_path / "empty", tmp_path / "h.npy", kind="similarity")


def test_fingerprint(tmp_path):
    images = _image_folder(tmp_path / "images")
    h = _symmetric(4, 8)
    np.save(tmp_path / "h.npy", h)

    def load(kind="similarity"):
        return datasets.load_plain(images, tmp_path / "h.npy", kind=kind)

    base = load().fingerprint()
    assert len(base) == 64 and load().fingerprint() == base
    images_only = load().fingerprint(include_matrix=False)
    assert images_only != base
    assert load("dissimilarity").fingerprint() != base
    assert load("dissimilarity").fingerprint(include_matrix=False) == images_only

    np.save(tmp_path / "h.npy", h * 2)
    assert load().fingerprint() != base
    assert load().fingerprint(include_matrix=False) == images_only

    first = images / _SORTED[0]
    first.write_bytes(first.read_bytes() + b"\0")  # same name, one byte more
    assert load().fingerprint(include_matrix=False) != images_only
    first.rename(images / "im_00.JPG")  # same bytes, new name
    changed = load().fingerprint(include_matrix=False)
    (images / "im_00.JPG").rename(first)
    assert load().fingerprint(include_matrix=False) != changed


def test_manifest_records_order(tmp_path):
    images = _image_folder(tmp_path / "images")
    np.save(tmp_path / "h.npy", _symmetric(4, 9))
    ds = datasets.load_plain(images, tmp_path / "h.npy", kind="similarity")
    m = ds.manifest()
    assert m["image_ids"] == _SORTED and m["n_images"] == 4
    assert m["matrix_path"] == str(tmp_path / "h.npy") and m["image_dir"] == str(images)
    assert m["kind"] == "similarity" and m["fingerprint"] == ds.fingerprint()


def test_image_stems_follow_image_ids(tmp_path):
    images = _image_folder(tmp_path / "images", names=["b.v2.png", "a.JPG", "c.tif"])
    np.save(tmp_path / "h.npy", _symmetric(3, 1))
    ds = datasets.load_plain(images, tmp_path / "h.npy", kind="similarity")
    assert ds.image_ids == ("a.JPG", "b.v2.png", "c.tif")
    assert ds.image_stems == ("a", "b.v2", "c")


def test_dataset_checks_its_fields(tmp_path):
    with pytest.raises(ValueError, match=r"similarity has shape \(3, 3\) but there are 2 images"):
        datasets.Dataset("x", ("a.png", "b.png"), np.zeros((3, 3)), "h.npy", "similarity", 0.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        datasets.Dataset("x", ("a.png",), np.zeros((1, 1)), "h.npy", "distances", 0.0)
    source = np.eye(2)
    ds = datasets.Dataset("x", ["a.png", "b.png"], source, "h.npy", "similarity", 0.0)
    source[0, 1] = 5.0  # the dataset holds its own copy
    assert ds.similarity[0, 1] == 0.0 and ds.image_paths == (Path("a.png"), Path("b.png"))
    assert ds.n == 2
