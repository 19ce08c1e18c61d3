"""rsatoolbox interop: exported RDMs reproduce 2OI and AIS; user RDM files load like .npy."""

import json
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import PIL.Image
import pytest
import rsatoolbox.rdm
import scipy.stats
from make_images import real_looking

from ais_jax.data import datasets
from ais_jax.engine import ablation, ais, similarity
from ais_jax.interop import rsatoolbox as rsa
from ais_jax.models.vgg16 import pool_blocks

N = 16
IDS = [f"img_{i:02d}.png" for i in range(N)]
DIGEST = "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def problem():
    params, acts, human = ref.synthetic_problem(3, n=N, hw=(7, 7), maps=24)
    sims = ablation.ablation_similarities(params, pool_blocks(jnp.asarray(acts)))
    return params, acts, human, sims


def _export(folder, sims, human, kind="similarity"):
    return rsa.export_rdms(folder, image_ids=IDS, human=human, kind=kind, full=sims.full,
                           ablated=sims.global_, model="tiny", dataset="synthetic",
                           checkpoint_sha256=DIGEST, extra={"human_matrix": "h.npy"})


def _pearson64(a: np.ndarray, b: np.ndarray) -> float:
    return float(scipy.stats.pearsonr(a.astype(np.float64), b.astype(np.float64)).statistic)


def test_export_reproduces_rho_and_global_ais(tmp_path, problem):
    params, acts, human, sims = problem
    paths = _export(tmp_path / "tiny" / "synthetic" / "rsatoolbox", sims, human)
    assert {k: p.name for k, p in paths.items()} == {
        "human": "human_rdm.hdf5", "model": "model_rdm.hdf5", "ablated": "ablated_rdms.hdf5",
        "image_ids": "image_ids.txt"}
    assert paths["image_ids"].read_text() == "".join(f"{i}\n" for i in IDS)

    # Loaded with rsatoolbox's own loader, not ours.
    h_rdm, m_rdm, a_rdm = (rsatoolbox.rdm.load_rdm(str(paths[k]))
                           for k in ("human", "model", "ablated"))
    rho = float(similarity.alignment(jnp.asarray(sims.full), jnp.asarray(human, jnp.float32)))
    assert abs(rho) > 0.1  # the sign below is a real check
    got_rho = rsatoolbox.rdm.compare(m_rdm, h_rdm, method="corr")
    assert got_rho.shape == (1, 1)
    np.testing.assert_allclose(got_rho[0, 0], rho, rtol=0, atol=1e-6)

    want_ais = np.asarray(ais.global_ais(sims, human, score="rho"))
    rho_ablated = rsatoolbox.rdm.compare(a_rdm, h_rdm, method="corr")[:, 0]  # [M]
    np.testing.assert_allclose(got_rho[0, 0] - rho_ablated, want_ais, rtol=0, atol=1e-6)
    assert np.abs(want_ais).max() > 1e-3  # not vacuous
    # Also against the float64 NumPy semantics of SPEC §4.
    want64 = ref.global_ais(ref.head_params64(params), acts.astype(np.float64), human)
    np.testing.assert_allclose(got_rho[0, 0] - rho_ablated, want64, rtol=0, atol=1e-6)

    # rsatoolbox's 'corr' is plain float64 Pearson of the stored vectors (upper triangles).
    iu = np.triu_indices(N, 1)
    np.testing.assert_allclose(
        got_rho[0, 0], _pearson64(np.asarray(sims.full)[iu], human[iu]), rtol=0, atol=1e-12)
    assert m_rdm.dissimilarities.dtype == np.float64
    np.testing.assert_array_equal(m_rdm.dissimilarities[0],
                                  1.0 - np.asarray(sims.full, np.float64)[iu])

    scores = rsa.rsatoolbox_scores(paths)
    np.testing.assert_allclose(scores["rho"], rho, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores["ais_rho"], want_ais, rtol=0, atol=1e-6)
    want_r2 = np.asarray(ais.global_ais(sims, human, score="r2"))
    np.testing.assert_allclose(scores["ais_r2"], want_r2, rtol=0, atol=1e-6)

    # What the files say about themselves.
    for r in (h_rdm, m_rdm, a_rdm):
        assert list(r.pattern_descriptors["image"]) == IDS
        assert r.descriptors["dataset"] == "synthetic" and r.descriptors["human_matrix"] == "h.npy"
    for r in (m_rdm, a_rdm):
        assert r.dissimilarity_measure == rsa.MODEL_MEASURE
        assert (r.descriptors["model"], r.descriptors["layer"], r.descriptors["ablated_layer"],
                r.descriptors["checkpoint_sha256"]) == ("tiny", "fc7", "conv5_3", DIGEST)
    assert [int(k) for k in a_rdm.rdm_descriptors["ablated_map"]] == list(range(acts.shape[-1]))
    assert list(m_rdm.rdm_descriptors["ablated_map"]) == ["none"]
    top = human[iu].max()
    assert h_rdm.dissimilarity_measure.startswith(
        "human similarity judgments converted to dissimilarity: max - similarity")
    assert repr(float(top)) in h_rdm.dissimilarity_measure
    np.testing.assert_array_equal(h_rdm.dissimilarities[0], top - human[iu])
    assert h_rdm.dissimilarities.min() == 0.0


def test_export_of_a_declared_dissimilarity(tmp_path, problem):
    _, _, human, sims = problem
    distances = human.max() - human + 3.0  # the user's file; the Dataset stores -distances
    paths = _export(tmp_path, sims, -distances, kind="dissimilarity")
    h_rdm = rsatoolbox.rdm.load_rdm(str(paths["human"]))
    iu = np.triu_indices(N, 1)
    np.testing.assert_array_equal(h_rdm.dissimilarities[0], distances[iu])
    assert h_rdm.descriptors["human_kind"] == "dissimilarity"
    rho = float(similarity.alignment(jnp.asarray(sims.full), jnp.asarray(human, jnp.float32)))
    np.testing.assert_allclose(rsa.rsatoolbox_scores(paths)["rho"], rho, rtol=0, atol=1e-6)


def test_export_errors(tmp_path, problem):
    _, _, human, sims = problem
    with pytest.raises(ValueError, match=r"image id 'é\.png' is not ASCII"):
        rsa.export_rdms(tmp_path, image_ids=["é.png", *IDS[1:]], human=human, kind="similarity",
                        full=sims.full, ablated=sims.global_, model="m", dataset="d",
                        checkpoint_sha256=DIGEST)
    with pytest.raises(ValueError, match=r"shapes disagree: human \(4, 4\)"):
        rsa.export_rdms(tmp_path, image_ids=IDS, human=human[:4, :4], kind="similarity",
                        full=sims.full, ablated=sims.global_, model="m", dataset="d",
                        checkpoint_sha256=DIGEST)
    with pytest.raises(ValueError, match="15 image ids for matrices over 16 images"):
        rsa.export_rdms(tmp_path, image_ids=IDS[1:], human=human, kind="similarity",
                        full=sims.full, ablated=sims.global_, model="m", dataset="d",
                        checkpoint_sha256=DIGEST)
    assert not list(tmp_path.iterdir())  # nothing half-written


# ---------------------------------------------------------------------------------------------
# Import.

_NAMES = ["c.png", "a.png", "e.png", "b.png", "d.png", "f.png"]
_SORTED = sorted(_NAMES)


def _images(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in _NAMES:
        PIL.Image.fromarray(real_looking(rng, 8, 8)).save(folder / name)
    return folder


def _distances(seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(len(_NAMES), 3))
    return np.linalg.norm(x[:, None] - x[None], axis=-1)


def _save(path: Path, d: np.ndarray, ids=_SORTED, **kw) -> Path:
    rdms = rsatoolbox.rdm.RDMs(d if d.ndim == 3 else d[None],
                               pattern_descriptors={"image": list(ids)}, **kw)
    rdms.save(str(path))  # rsatoolbox's own writer
    return path


def test_rdm_file_loads_like_the_same_matrix_as_npy(tmp_path):
    images = _images(tmp_path / "images")
    d = _distances()
    np.save(tmp_path / "d.npy", d)
    from_npy = datasets.load_plain(images, tmp_path / "d.npy", kind="dissimilarity")
    _save(tmp_path / "d.hdf5", d, dissimilarity_measure="euclidean")
    from_rdm = datasets.load_plain(images, tmp_path / "d.hdf5", kind=None)  # no kind needed
    assert from_rdm.kind == "dissimilarity" and from_rdm.image_ids == tuple(_SORTED)
    np.testing.assert_allclose(from_rdm.similarity, from_npy.similarity, rtol=0, atol=1e-15)
    model = np.corrcoef(np.random.default_rng(1).normal(size=(len(_NAMES), 20)))
    for score in ("rho", "r2"):
        assert float(similarity.alignment(model, from_rdm.similarity, score)) == float(
            similarity.alignment(model, from_npy.similarity, score))
    assert from_rdm.manifest()["origin"] == {
        "layout": "rsatoolbox", "rdm_file": str(tmp_path / "d.hdf5"),
        "dissimilarity_measure": "euclidean", "selected": None, "pattern_descriptor": "image"}
    # kind='dissimilarity' is accepted; read_matrix gives the RDM as a matrix too.
    datasets.load_plain(images, tmp_path / "d.hdf5", kind="dissimilarity")
    np.testing.assert_allclose(datasets.read_matrix(tmp_path / "d.hdf5"), d, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match=r"d\.hdf5: an rsatoolbox RDMs file holds dissimilarities;"
                                         r" kind='similarity' contradicts it"):
        datasets.load_plain(images, tmp_path / "d.hdf5", kind="similarity")

    # Ids without their suffix are accepted; another pattern descriptor name too, if it is the
    # only one.
    _save(tmp_path / "stems.h5", d, ids=[Path(n).stem for n in _SORTED])
    np.testing.assert_array_equal(
        datasets.load_plain(images, tmp_path / "stems.h5", kind=None).similarity,
        from_rdm.similarity)
    rdms = rsatoolbox.rdm.RDMs(d[None], pattern_descriptors={"conds": list(_SORTED)})
    rdms.save(str(tmp_path / "conds.hdf5"))
    ds = datasets.load_plain(images, tmp_path / "conds.hdf5", kind=None)
    assert ds.origin["pattern_descriptor"] == "conds"


def test_one_rdm_of_several_is_picked_by_a_descriptor(tmp_path):
    images = _images(tmp_path / "images")
    stack = np.stack([_distances(s) for s in range(3)])
    _save(tmp_path / "many.hdf5", stack, rdm_descriptors={"subject": ["s1", "s2", "s2"]})
    ds = datasets.load_plain(images, f"{tmp_path / 'many.hdf5'}:subject=s1", kind=None)
    np.testing.assert_allclose(-ds.similarity, stack[0], rtol=0, atol=1e-15)
    assert ds.origin["selected"] == "subject=s1"
    ds = datasets.load_plain(images, f"{tmp_path / 'many.hdf5'}:index=2", kind=None)
    np.testing.assert_allclose(-ds.similarity, stack[2], rtol=0, atol=1e-15)
    message = (r"many\.hdf5: holds 3 RDMs; pick one with .*many\.hdf5:<descriptor>=<value> "
               r"\(rdm descriptors: index, subject\)")
    with pytest.raises(ValueError, match=message):
        datasets.load_plain(images, tmp_path / "many.hdf5", kind=None)
    with pytest.raises(ValueError, match=r"2 RDMs have subject='s2'; expected exactly one"):
        datasets.load_plain(images, f"{tmp_path / 'many.hdf5'}:subject=s2", kind=None)
    with pytest.raises(ValueError, match=r"no rdm descriptor 'run' to select by"):
        datasets.load_plain(images, f"{tmp_path / 'many.hdf5'}:run=1", kind=None)


def test_pattern_descriptor_mismatch_is_refused(tmp_path):
    images = _images(tmp_path / "images")
    d = _distances()
    wrong = list(_SORTED)
    wrong[3] = "x.png"
    _save(tmp_path / "wrong.hdf5", d, ids=wrong)
    message = (r"wrong\.hdf5: pattern descriptor 'image' does not match the images: first "
               r"difference at row 3: 'x\.png' in the file, 'd\.png' among the images")
    with pytest.raises(ValueError, match=message):
        datasets.load_plain(images, tmp_path / "wrong.hdf5", kind=None)
    _save(tmp_path / "order.hdf5", d, ids=_NAMES)  # written order, not sorted
    with pytest.raises(ValueError, match=r"\(the same ids in another order\): first difference "
                                         r"at row 0: 'c\.png' in the file, 'a\.png'"):
        datasets.load_plain(images, tmp_path / "order.hdf5", kind=None)
    rdms = rsatoolbox.rdm.RDMs(d[None])  # no ids at all
    rdms.save(str(tmp_path / "bare.hdf5"))
    with pytest.raises(ValueError, match=r"bare\.hdf5: no pattern descriptor 'image' naming the "
                                         r"images \(has: index\)"):
        datasets.load_plain(images, tmp_path / "bare.hdf5", kind=None)
    _save(tmp_path / "five.hdf5", d[:5, :5], ids=_SORTED[:5])
    with pytest.raises(ValueError, match=r"five\.hdf5: pattern descriptor 'image' has 5 ids but "
                                         r"there are 6 images"):
        datasets.load_plain(images, tmp_path / "five.hdf5", kind=None)


def test_bad_rdm_files(tmp_path):
    images = _images(tmp_path / "images")
    with pytest.raises(FileNotFoundError, match=r"missing\.hdf5: RDM file not found"):
        datasets.load_plain(images, tmp_path / "missing.hdf5", kind=None)
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=r"junk\.hdf5: cannot read as an rsatoolbox RDMs"):
        datasets.load_plain(images, tmp_path / "junk.hdf5", kind=None)
    d = _distances()
    d[0, 2] = d[2, 0] = np.nan  # rsatoolbox allows missing pairs; scores cannot
    _save(tmp_path / "nan.hdf5", d)
    with pytest.raises(ValueError, match=r"nan\.hdf5: 2 non-finite off-diagonal entries"):
        datasets.load_plain(images, tmp_path / "nan.hdf5", kind=None)
    with pytest.raises(ValueError, match="declare whether the matrix holds similarities or "
                                         "dissimilarities"):
        np.save(tmp_path / "d.npy", _distances())
        datasets.load_plain(images, tmp_path / "d.npy", kind=None)


# ---------------------------------------------------------------------------------------------
# --rsatoolbox on the shared runner.


def test_runner_exports_checked_rdms_and_ids(tmp_path_factory, tmp_path, monkeypatch):
    from aim1_fixtures import SMALL_DEMO, small_demo_run

    from ais_jax import storage
    from ais_jax.study.config import StudyConfig
    from ais_jax.study.runner import Aim, prepare_study, run_study

    demo_run = small_demo_run(tmp_path_factory)  # shared with the Aim 1 tests: cache hits
    monkeypatch.setenv(storage.CACHE_ENV, str(demo_run["cache"]))
    data = Path(demo_run["out"]) / "demo_data"
    config = StudyConfig(out=str(tmp_path / "out"), data_dir=str(data / "images"),
                         matrix=str(data / "similarity.npy"), name="synthetic",
                         models=(("synthetic", str(demo_run["checkpoint"])),),
                         kind="similarity", image_size=SMALL_DEMO["image_size"],
                         rsatoolbox=True)
    seen = []
    aim = Aim("probe", lambda item: seen.append(item) or {"dataset": item.key},
              lambda study, rows: rows)
    study = prepare_study(config)  # loaded once for both runs
    assert run_study(config, aim, study=study) == [{"dataset": "synthetic"}]
    item = seen[0]
    folder = tmp_path / "out" / "synthetic" / "synthetic"
    ids = list(item.image_ids)
    assert (folder / "image_ids.txt").read_text().splitlines() == ids  # beside every array
    assert (data / "image_ids.txt").read_text().splitlines() == ids  # beside similarity.npy
    export = folder / "rsatoolbox"
    check = json.loads((export / "check.json").read_text())
    assert check["within_tolerance"] is True
    assert check["max_abs_diff_rho"] <= 1e-6 and check["max_abs_diff_ais"] <= 1e-6
    sims = item.similarities.value
    np.testing.assert_allclose(check["rho"], float(similarity.alignment(sims.full, item.human)),
                               rtol=0, atol=0)
    m_rdm = rsatoolbox.rdm.load_rdm(str(export / "model_rdm.hdf5"))
    a_rdm = rsatoolbox.rdm.load_rdm(str(export / "ablated_rdms.hdf5"))
    assert a_rdm.n_rdm == 512 and list(a_rdm.pattern_descriptors["image"]) == ids
    assert m_rdm.descriptors["checkpoint_sha256"] == item.model.checkpoint_sha256
    assert m_rdm.descriptors["human_matrix"] == str(data / "similarity.npy")

    # The exported human RDM, read back as --matrix, scores as the original matrix.
    again = datasets.load_plain(data / "images", export / "human_rdm.hdf5", kind=None)
    for score in ("rho", "r2"):
        np.testing.assert_allclose(float(similarity.alignment(sims.full, again.similarity, score)),
                                   float(similarity.alignment(sims.full, item.human, score)),
                                   rtol=0, atol=1e-6)

    # A second run finds the export done and leaves it alone.
    stamp = (export / "ablated_rdms.hdf5").stat().st_mtime_ns
    run_study(config, aim, study=study)
    assert (export / "ablated_rdms.hdf5").stat().st_mtime_ns == stamp
    assert json.loads((export / "check.json").read_text()) == check


def test_missing_rsatoolbox_fails_before_any_work(tmp_path, monkeypatch):
    import sys

    from ais_jax.study.config import StudyConfig

    monkeypatch.setitem(sys.modules, "rsatoolbox.rdm", None)  # as if not installed
    config = StudyConfig(out=str(tmp_path / "out"), data_dir=str(tmp_path),
                         models=(("m", "ecoset"),), rsatoolbox=True)
    message = r"rsatoolbox is not installed.*pip install 'ais_jax\[rsa\]'"
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_cli_takes_an_rdm_file_without_kind_and_refuses_wrong_ids(tmp_path):
    import os
    import subprocess
    import sys

    images = _images(tmp_path / "images")
    wrong = list(_SORTED)
    wrong[2] = "zz.png"
    _save(tmp_path / "human.hdf5", _distances(), ids=wrong)
    out = tmp_path / "results"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "AIS_JAX_CACHE": str(tmp_path / "cache")}
    for extra, message in [
        ([], "error: .*human.hdf5: pattern descriptor 'image' does not match the images: first "
             "difference at row 2: 'zz.png' in the file, 'c.png' among the images"),
        (["--kind=similarity"], "error: .*human.hdf5: an rsatoolbox RDMs file holds "
                                "dissimilarities; kind='similarity' contradicts it"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "experiments.aim1", "--model=ecoset", "--rsatoolbox",
             f"--data_dir={images}", f"--matrix={tmp_path / 'human.hdf5'}", f"--out={out}",
             *extra], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1, proc.stderr
        assert re.search(message, proc.stderr), proc.stderr
        assert "Traceback" not in proc.stderr
        assert not out.exists()
