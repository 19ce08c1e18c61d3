"""report.html: it parses, every link stays inside --out, every image is listed once, the numbers
are the CSVs', and headless Chromium opens the demos' pages, sorts, filters and zooms."""

import dataclasses
import json
import math
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import html5lib
import numpy as np
import PIL.Image
import pytest
from aim1_fixtures import SMALL_DEMO, small_demo_run
from browser import Browser
from report_fixtures import generated_aim2

from ais_jax import storage
from ais_jax.explain import heatmaps as hm
from ais_jax.report import html
from ais_jax.report.html import read_csv
from ais_jax.study import aim2, aim3_demo

# Screenshots of the browser tests go here when set (else into the test's tmp_path).
SHOTS_ENV = "AIS_JAX_REPORT_SCREENSHOTS"


@pytest.fixture(scope="module")
def aim3_demo_out(tmp_path_factory) -> Path:
    """The Aim 3 demo (and with it Aim 2's, in <out>/aim2) at 8 images, per-image panels on."""
    cache = tmp_path_factory.mktemp("report_cache")
    out = tmp_path_factory.mktemp("aim3_demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(storage.CACHE_ENV, str(cache))
        aim3_demo.run_demo(aim3_demo.Aim3DemoConfig(out=str(out), n_images=8,
                                                    per_image_figures=True))
    return out


@pytest.fixture
def demo_out(request, tmp_path_factory) -> Path:
    """The results folder of the demo ``request.param``: 'aim1', 'aim2' or 'aim3'."""
    if request.param == "aim1":
        return Path(small_demo_run(tmp_path_factory)["out"])
    out = request.getfixturevalue("aim3_demo_out")
    return out / "aim2" if request.param == "aim2" else out


def parse(page: Path):
    """The page as an element tree; any HTML5 parse error fails."""
    with open(page, "rb") as f:
        return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(f)


def gallery(tree) -> tuple[list[str], list]:
    """Column keys and body rows of the page's gallery."""
    table = tree.find(".//table[@id='gallery']")
    return [th.get("data-key") for th in table.find("thead/tr")], table.findall("tbody/tr")


def assert_shown(td, raw: str) -> None:
    """A cell holds the CSV's string and shows it rounded (∞ and NaN spelled out)."""
    assert td.get("data-v") == raw
    x, text = float(raw), td.text
    if math.isnan(x):
        assert text == "NaN"
    elif math.isinf(x):
        assert text == "∞"
    else:
        assert float(text) == pytest.approx(x, rel=5e-4, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# The pages as files.


@pytest.mark.parametrize("demo_out", ["aim1", "aim2", "aim3"], indirect=True)
def test_demo_page_parses_and_every_link_resolves_inside_out(demo_out):
    page = demo_out / html.REPORT_FILE
    tree = parse(page)
    links = [(el.tag, el.get(a)) for el in tree.iter() for a in ("src", "href") if el.get(a)]
    assert sum(tag == "img" for tag, _ in links) >= 3
    root = demo_out.resolve()
    for tag, link in links:
        if link.startswith("#"):
            continue
        parts = urlsplit(link)
        assert not parts.scheme and not parts.netloc and not link.startswith("/"), link
        target = (demo_out / unquote(parts.path)).resolve()
        assert target.is_relative_to(root) and target.is_file(), (tag, link)
    assert "<script src" not in page.read_text()  # inline and dependency-free


def test_aim2_gallery_lists_every_image_once_with_the_csvs_numbers(aim3_demo_out):
    out = aim3_demo_out / "aim2"
    run = json.loads((out / "run.json").read_text())
    keys, rows = gallery(parse(out / html.REPORT_FILE))
    ids = [r.get("data-id") for r in rows]
    assert sorted(ids) == sorted(f"{k}/{i}" for k, d in run["datasets"].items()
                                 for i in d["image_ids"])
    assert len(set(ids)) == len(ids) == 8
    labels = [label for label, _ in run["config"]["models"]]
    match = {r["image_id"]: r for r in read_csv(out / "match_synthetic.csv")}
    for label in labels:
        folder = out / label / "synthetic"
        per_image = {r["image_id"]: r for r in read_csv(folder / "per_image.csv")}
        maps = hm.read_heatmaps(folder)
        for tr in rows:
            image_id = tr.get("data-id").split("/", 1)[1]
            cells = dict(zip(keys, tr, strict=True))
            assert_shown(cells[f"mad:{label}"], per_image[image_id]["mad"])
            assert_shown(cells[f"entropy:{label}"], per_image[image_id]["entropy"])
            assert_shown(cells["match"], match[image_id]["match"])
            assert_shown(cells["max_entropy"], match[image_id]["max_entropy"])
            link = cells[f"overlay:{label}"].find("a")
            stem = Path(image_id).stem
            assert unquote(link.get("href")) == f"{label}/synthetic/overlays/{stem}.png"
            heat = maps.original(maps.image_ids.index(image_id))  # what the overlay scales
            assert float(link.get("data-lo")) == pytest.approx(float(heat.min()), rel=5e-4)
            assert float(link.get("data-hi")) == pytest.approx(float(heat.max()), rel=5e-4)


def test_aim3_gallery_lists_model_x_image_once_with_rr_of_each_source(aim3_demo_out):
    out = aim3_demo_out
    run = json.loads((out / "run.json").read_text())
    keys, rows = gallery(parse(out / html.REPORT_FILE))
    labels = [label for label, _ in run["config"]["models"]]
    image_ids = run["datasets"]["synthetic"]["image_ids"]
    assert sorted(r.get("data-id") for r in rows) == sorted(
        f"{m}/synthetic/{i}" for m in labels for i in image_ids)
    for tr in rows:
        label, _, image_id = tr.get("data-id").split("/")
        per_image = {(r["source"], r["image_id"]): r
                     for r in read_csv(out / label / "synthetic" / "per_image.csv")}
        cells = dict(zip(keys, tr, strict=True))
        for source in ("ais", "centre_bias", "mismatched"):
            for p in ("5", "10", "15"):
                assert_shown(cells[f"{source}:rr_{p}"], per_image[source, image_id][f"rr_{p}"])
        panel = cells["figure"].find("a").get("href")
        assert unquote(panel) == f"{label}/synthetic/figure4/{Path(image_id).stem}.png"
    assert any(a.get("href") == "aim2/report.html" for a in parse(out / html.REPORT_FILE).iter("a"))


def test_aim1_tables_are_the_csvs_and_the_top_maps_the_global_ais(tmp_path_factory):
    out = Path(small_demo_run(tmp_path_factory)["out"])
    tree = parse(out / html.REPORT_FILE)
    for table_id, path in (("results", out / "results.csv"),
                           ("folds-synthetic-synthetic", out / "synthetic/synthetic/folds.csv")):
        table = tree.find(f".//table[@id='{table_id}']")
        keys = [th.get("data-key") for th in table.find("thead/tr")]
        csv_rows = read_csv(path)
        assert keys == list(csv_rows[0])
        for tr, row in zip(table.findall("tbody/tr"), csv_rows, strict=True):
            for td, key in zip(tr, keys, strict=True):
                if html.cell(row[key], numeric=True)["n"] is None:  # text
                    assert td.get("data-v") == row[key]
                else:
                    assert_shown(td, row[key])
    assert len(read_csv(out / "synthetic/synthetic/folds.csv")) == SMALL_DEMO["folds"]
    ais = np.load(out / "synthetic/synthetic/global_ais.npy")
    top = tree.find(".//table[@id='top-synthetic-synthetic']").findall("tbody/tr")
    assert [int(tr[1].get("data-v")) for tr in top] == list(np.argsort(-ais)[:html.TOP_MAPS])
    curves = tree.find(".//img[@class='curves']").get("src")
    with PIL.Image.open(out / unquote(curves)) as img:
        assert img.size[0] >= 600


def test_any_number_of_models_flags_and_gaps_and_a_rerun_is_identical(tmp_path):
    made = generated_aim2(tmp_path, datasets=2, images=6, models=3)
    (tmp_path / "model_b" / "set1" / "overlays" / "set1_img002.png").unlink()  # --overlays=N
    page = html.write_report(tmp_path)
    keys, rows = gallery(parse(page))
    assert [k for k in keys if k.startswith("overlay:")] == [f"overlay:{m}" for m in made["labels"]]
    assert len(rows) == 12 and len({r.get("data-id") for r in rows}) == 12
    for tr in rows:
        cells = dict(zip(keys, tr, strict=True))
        key, image_id = tr.get("data-id").split("/")
        flag = cells["overlay:model_c"].find("span[@class='flag']")
        assert (flag is not None) == (image_id == made["ids"][key][0])  # undefined: flagged
        missing = cells["overlay:model_b"].find("a") is None
        assert missing == (image_id == "set1_img002.png")
        if image_id.endswith("img001.png"):  # every pair's Match, NaN in each file
            for pair in ("model_a vs model_b", "model_a vs model_c", "model_b vs model_c"):
                c = cells[f"match {pair}"]
                assert c.text == "NaN" and c.get("data-n") == "NaN"
    select = parse(page).find(".//select[@data-attr='dataset']")
    assert [o.text for o in select] == ["all", "set0", "set1"]
    first = page.read_bytes()
    assert html.write_report(tmp_path).read_bytes() == first  # a function of the folder only


def test_report_flag_skips_the_page_and_bad_folders_fail_clearly(tmp_path_factory, tmp_path,
                                                                 monkeypatch):
    first = small_demo_run(tmp_path_factory)
    monkeypatch.setenv(storage.CACHE_ENV, str(first["cache"]))
    data = Path(first["out"]) / "demo_data"
    config = aim2.Aim2Config(
        out=str(tmp_path / "quiet"), data_dir=str(data / "images"),
        matrix=str(data / "similarity.npy"), kind="similarity", name="synthetic",
        models=(("synthetic", str(first["checkpoint"])),), image_size=SMALL_DEMO["image_size"],
        batch_size=SMALL_DEMO["batch_size"], overlays=0, full_maps="none", report=False)
    aim2.run_aim2(config)
    assert (tmp_path / "quiet" / "models.csv").is_file()
    assert not (tmp_path / "quiet" / html.REPORT_FILE).exists()
    assert not (tmp_path / "quiet" / html.ASSETS).exists()
    # On by default; the images live outside --out, so the page shows their thumbnails.
    aim2.run_aim2(dataclasses.replace(config, out=str(tmp_path / "page"), report=True))
    tree = parse(tmp_path / "page" / html.REPORT_FILE)
    keys, rows = gallery(tree)
    image = rows[0][keys.index("image")].find("a")
    assert image.get("href") == image.find("img").get("src") == (
        f"{html.ASSETS}/thumbs/_data/synthetic/img_000.png.jpg")
    for el in tree.iter():
        for link in filter(None, (el.get("src"), el.get("href"))):
            if not link.startswith("#"):
                assert (tmp_path / "page" / unquote(link)).resolve().is_relative_to(
                    (tmp_path / "page").resolve()), link
    from experiments import cli  # the shared flag: --report=false reaches the config

    cli.FLAGS(["prog", "--report=false", f"--data_dir={data}", f"--out={tmp_path / 'o'}"])
    try:
        assert cli.study_kwargs("unused")["report"] is False
    finally:
        cli.FLAGS.unparse_flags()
    with pytest.raises(FileNotFoundError, match="no run.json"):
        html.write_report(tmp_path / "empty")
    storage.write_json(tmp_path / "odd" / "run.json", {"versions": {}})
    with pytest.raises(ValueError, match="names no single aim"):
        html.write_report(tmp_path / "odd")


def test_summary_markdown_is_escaped_html():
    page = html.markdown_html("# Title\n\n| a | b |\n|---|---|\n| <script> | **x** |\n\n"
                              "* item `code`\n  continued\n\nplain & text")
    assert "<h3>Title</h3>" in page
    assert "<td>&lt;script&gt;</td><td><strong>x</strong></td>" in page
    assert "<li>item <code>code</code> continued</li>" in page
    assert "<p>plain &amp; text</p>" in page and "<script>" not in page


def test_cells_spell_out_inf_and_nan_and_sort_them_apart():
    assert html.cell("inf", numeric=True)["text"] == "∞"
    assert html.cell("inf", numeric=True)["n"] == "Infinity"
    assert html.cell("nan", numeric=True) | {"title": ""} == {
        "v": "nan", "text": "NaN", "n": "NaN", "cls": "nan", "title": ""}
    assert html.cell("", numeric=True)["text"] == "–"
    assert html.shown(6.82) == "6.820" and html.shown(0.0016432) == "0.001643"


# ---------------------------------------------------------------------------------------------
# In a real browser.


def _column(b: Browser, table: str, key: str, attr: str = "n") -> list:
    return b.evaluate(
        f"(() => {{ const t = document.getElementById('{table}');"
        f" const i = Array.from(t.tHead.rows[0].cells).findIndex(c => c.dataset.key === '{key}');"
        f" return Array.from(t.tBodies[0].rows, r => r.cells[i].dataset.{attr}); }})()")


def _ordered(values: list, descending: bool) -> bool:
    nums = [float(v) for v in values]
    finite = [x for x in nums if not math.isnan(x)]
    assert all(math.isnan(x) for x in nums[len(finite):])  # NaN last, either way
    return finite == sorted(finite, reverse=descending)


def _shots(tmp_path: Path) -> Path:
    return Path(os.environ.get(SHOTS_ENV) or tmp_path)


def _sorts(b: Browser, table: str, key: str) -> None:
    before = _column(b, table, key)
    b.click(f'#{table} th[data-key="{key}"]')
    after = _column(b, table, key)
    assert sorted(map(str, after)) == sorted(map(str, before)) and _ordered(after, False)
    assert b.evaluate(f"document.querySelector('#{table} th[data-key=\"{key}\"]')"
                      ".getAttribute('aria-sort')") == "ascending"
    b.click(f'#{table} th[data-key="{key}"]')
    assert _ordered(_column(b, table, key), True)


@pytest.mark.parametrize("demo_out", ["aim1", "aim2", "aim3"], indirect=True)
def test_chromium_opens_the_demo_page_sorts_zooms_and_loads_everything(demo_out, tmp_path):
    name = "aim1" if (demo_out / "results.csv").is_file() else (
        "aim3" if (demo_out / "table1.csv").is_file() else "aim2")
    with Browser() as b:
        b.open(demo_out / html.REPORT_FILE)
        assert b.load_all_images() == []
        if name == "aim1":
            _sorts(b, "top-synthetic-synthetic", "map")
        elif name == "aim2":
            _sorts(b, "gallery", "match")
            match = {r["image_id"]: float(r["match"])
                     for r in read_csv(demo_out / "match_synthetic.csv")}
            order = b.evaluate("Array.from(document.querySelectorAll('#gallery tbody tr'),"
                               " r => r.dataset.id.split('/')[1])")
            assert order == sorted(match, key=lambda i: -match[i])  # the CSV's order
            b.click("#gallery a.zoom[data-lo]")
            zoom = b.evaluate("(() => { const a = document.querySelector("
                              "'#gallery a.zoom[data-lo]');"
                              " return [document.getElementById('zoom').open, a.dataset.lo,"
                              " document.getElementById('zoom-lo').textContent,"
                              " document.getElementById('zoom-img').getAttribute('src'),"
                              " a.getAttribute('href')]; })()")
            assert zoom[0] and zoom[1] == zoom[2] and zoom[3] == zoom[4]
            assert b.evaluate("document.getElementById('zoom-img').decode().then(() => "
                              "document.getElementById('zoom-img').naturalWidth)") > 0
        else:
            _sorts(b, "gallery", "ais:rr_10")
            b.evaluate("(() => { const s = document.querySelector('select[data-attr=model]');"
                       " s.value = 'synthetic_2'; s.dispatchEvent(new Event('change')); })()")
            shown = b.evaluate("Array.from(document.querySelectorAll('#gallery tbody tr'))"
                               ".filter(r => !r.hidden).map(r => r.dataset.model)")
            assert shown == ["synthetic_2"] * 8
        shot = b.screenshot(_shots(tmp_path) / f"report_{name}.png")
        assert b.problems() == []
    with PIL.Image.open(shot) as img:
        assert img.size == (1400, 1000)


def test_chromium_sorts_nan_last_with_three_models(tmp_path):
    generated_aim2(tmp_path, datasets=2, images=6, models=3)
    page = html.write_report(tmp_path)
    with Browser() as b:
        b.open(page)
        assert b.load_all_images() == []
        _sorts(b, "gallery", "match model_a vs model_c")
        _sorts(b, "gallery", "mad:model_c")
        b.evaluate("(() => { const s = document.querySelector('select[data-attr=dataset]');"
                   " s.value = 'set1'; s.dispatchEvent(new Event('change')); })()")
        assert b.evaluate("document.querySelector('.count').textContent") == "6 of 12 rows shown"
        assert b.problems() == []
