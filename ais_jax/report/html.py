"""``report.html``: one static page per results folder, built from what the run wrote there.

`write_report(out)` reads ``run.json`` (which aim, which models and datasets), the CSV/JSON tables,
``summary.md`` and the PNGs under ``out`` and writes ``out/report.html`` plus thumbnails and small
plots under ``out/report_files/``. It is a pure function of the folder: rerunning it (a resumed
run does) rewrites the same page, and it needs no part of the run in memory. Every path in the
page is relative, so the folder can be zipped and opened anywhere; the page needs no server, no
network and no library (its script is ``templates/report.js``, inline).

Per aim:

* Aim 1: the results table, Figure 1, and per model and dataset the folds table, the training
  and test curves of every fold (one overlaid plot) and the top maps by global AIS.
* Aim 2: the models and datasets tables and one gallery row per image: the image, each model's
  overlay with its MAD, entropy and whether the heatmap is defined, Match and maxEntropy;
  sortable by each column, filterable by dataset; an overlay opens large with its raw-heatmap
  colour bar.
* Aim 3: Table 1, the Figure 4 grids and one row per model and image: the per-image Figure 4
  panel (when the run wrote them) and RR at each p for AIS and the baselines, inf and NaN shown
  as such; sortable and filterable.

Numbers in the tables are the CSVs' own strings (``data-v``), shown rounded.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import jinja2
import matplotlib
import numpy as np
import PIL.Image
from markupsafe import escape

from ais_jax import storage
from ais_jax.explain import heatmaps as hm
from ais_jax.report import figures, thumbnails

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
ASSETS = "report_files"
TOP_MAPS = 10  # maps listed per model and dataset in Aim 1
AIMS = {"fold_format_version": "aim1", "aim2_format_version": "aim2",
        "aim3_record_version": "aim3"}  # run.json's versions key -> the aim with a page
AIM_NAMES = tuple(AIMS.values())
TITLES = {"aim1": "Aim 1 — do the top-AIS maps explain human similarity?",
          "aim2": "Aim 2 — per-image AIS heatmaps",
          "aim3": "Aim 3 — AIS heatmaps vs saliency"}
TABLE_SUFFIXES = (".csv", ".json", ".md")


# ---------------------------------------------------------------------------------------------
# Cells and tables (plain dicts, rendered by templates/macros.j2).


def _number(raw: str) -> float | None:
    if raw in ("True", "False"):
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def shown(x: float) -> str:
    """The page's rounding of a number: 4 significant digits, ∞ and NaN spelled out."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    text = f"{x:#.4g}"  # keeps trailing zeros: 6.820, 0.001643
    return text.rstrip(".") if "e" not in text else text


def cell(raw: Any, *, numeric: bool, title: str = "") -> dict:
    """A table cell: ``v`` the raw string (as in the CSV), ``text`` shown, ``n`` the sort key."""
    raw = "" if raw is None else str(raw)
    x = _number(raw) if numeric else None
    if x is None:
        return {"v": raw, "text": raw if raw else "–", "n": None,
                "cls": "missing" if not raw else "", "title": title}
    cls = "inf" if math.isinf(x) else "nan" if math.isnan(x) else "num"
    key = "NaN" if math.isnan(x) else "Infinity" if x > 0 and math.isinf(x) else (
        "-Infinity" if math.isinf(x) else repr(x))
    return {"v": raw, "text": shown(x), "n": key, "cls": cls, "title": title}


def image_cell(thumb: tuple[str, tuple[int, int]] | None, full: str | None, alt: str, *,
               caption: str = "", lo: float | None = None, hi: float | None = None,
               flag: str = "", wide: bool = False, label: str = "") -> dict:
    """A picture cell: ``thumb`` (URL, (w, h)) shown, ``full`` (a URL) opened large.

    ``wide``: a whole figure (title, legend), shown larger than a picture; ``label``: a line
    of text under it (the image id).
    """
    url, (w, h) = thumb if thumb else (None, (0, 0))
    return {"img": url, "href": full or url, "w": w, "h": h, "alt": alt,
            "caption": caption or alt,
            "lo": None if lo is None else shown(lo), "hi": None if hi is None else shown(hi),
            "flag": flag, "wide": wide, "label": label}


COLUMN_PX = {"text": 120, "num": 120, "none": 150}  # gallery column widths by type
ROW_PX, WIDE_ROW_PX = 120, 230  # a gallery row's height before it is first drawn


def as_gallery(table: dict, *, wide: bool = False) -> dict:
    """Marks ``table`` as a gallery: fixed column widths (CSS grid rows), so the browser lays
    out and paints only the rows on screen, and sorting 1,000 rows stays fast."""
    widths = [230 if wide and c["type"] == "none" else COLUMN_PX[c["type"]]
              for c in table["columns"]]
    return {**table, "grid": " ".join(f"{w}px" for w in widths),
            "row_px": WIDE_ROW_PX if wide else ROW_PX}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _is_numeric(rows: Sequence[dict], key: str) -> bool:
    values = [r.get(key) or "" for r in rows]
    return any(values) and all(_number(v) is not None for v in values if v)


def csv_table(out: Path, path: Path, table_id: str, caption: str,
              columns: Sequence[str] | None = None, *, folded: bool = False) -> dict | None:
    """A sortable table of a CSV's rows (None if the file is absent); ``folded``: collapsed."""
    if not path.is_file():
        return None
    rows = read_csv(path)
    keys = list(columns) if columns else (list(rows[0]) if rows else [])
    numeric = {k: _is_numeric(rows, k) for k in keys}
    return {"id": table_id, "caption": caption, "source": rel(out, path),
            "columns": [{"key": k, "label": k, "type": "num" if numeric[k] else "text"}
                        for k in keys],
            "rows": [{"attrs": {}, "cells": [cell(r.get(k), numeric=numeric[k]) for k in keys]}
                     for r in rows],
            "filters": [], "folded": folded}


# ---------------------------------------------------------------------------------------------
# Paths.


def rel(out: Path, path: Path) -> str:
    """``path`` as a URL relative to ``out`` (percent-encoded, '/' separators)."""
    return quote(Path(os.path.relpath(path, out)).as_posix())


def _thumb(out: Path, source: Path, data_key: str = "") -> tuple[str, tuple[int, int]] | None:
    """``source``'s thumbnail under report_files/thumbs: its relative URL and (w, h).

    None if there is no such file.
    """
    if not source.is_file():
        return None
    try:
        inner = source.resolve().relative_to(out.resolve())
    except ValueError:  # an image outside --out (the user's data): keyed by dataset
        inner = Path("_data") / data_key / source.name
    target = out / ASSETS / "thumbs" / inner.parent / f"{inner.name}.jpg"
    size = thumbnails.thumbnail(source, target)
    return rel(out, target), size


def _inside(out: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(out.resolve())
        return True
    except ValueError:
        return False


def image_dir(out: Path, run: dict, key: str) -> Path:
    """The images of dataset ``key``; a folder recorded inside the run's --out follows it."""
    recorded = Path(run["datasets"][key]["image_dir"])
    if not recorded.is_dir():
        try:
            return out / recorded.relative_to(Path(run["config"]["out"]))
        except ValueError:
            pass
    return recorded


def png_size(path: Path) -> tuple[int, int]:
    """A picture's ``(width, height)`` (its header only is read)."""
    with PIL.Image.open(path) as img:
        return img.size


# ---------------------------------------------------------------------------------------------
# Summary.md as HTML (headings, paragraphs, lists, tables, bold and code spans).


def _inline(text: str) -> str:
    out, parts = [], str(escape(text)).split("`")
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{part}</code>")
        else:
            bits = part.split("**")
            out.append("".join(f"<strong>{b}</strong>" if j % 2 else b
                               for j, b in enumerate(bits)))
    return "".join(out)


def markdown_html(text: str) -> str:
    """The Markdown subset summary.md uses, as HTML (everything escaped first)."""
    html, para, items, table = [], [], [], []

    def flush() -> None:
        if para:
            html.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            html.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if table:
            rows = [[c.strip() for c in r.strip().strip("|").split("|")] for r in table]
            body = [r for r in rows[1:] if not all(set(c) <= set("-: ") for c in r)]
            html.append("<div class='scroll'><table class='md'><thead><tr>"
                        + "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
                        + "</tr></thead><tbody>"
                        + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r)
                                  + "</tr>" for r in body) + "</tbody></table></div>")
            table.clear()

    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|"):
            if not table:
                flush()
            table.append(s)
        elif s.startswith("#"):
            flush()
            level = min(len(s) - len(s.lstrip("#")) + 2, 6)
            html.append(f"<h{level}>{_inline(s.lstrip('#').strip())}</h{level}>")
        elif s[:2] in ("* ", "- "):
            if para or table:
                flush()
            items.append(s[2:])
        elif not s:
            flush()
        elif items and line.startswith(" "):
            items[-1] += " " + s
        else:
            if items or table:
                flush()
            para.append(s)
    flush()
    return "\n".join(html)


# ---------------------------------------------------------------------------------------------
# Aim 1.


def _curves_plot(folder: Path, target: Path, title: str) -> bool:
    """One plot of every fold's training and test curve (False when there are no folds)."""
    records = [json.loads(p.read_text()) for p in sorted((folder / "folds").glob("*.json"))]
    if not records:
        return False
    fig = figures.plt.figure(figsize=(6, 3.4))
    ax = fig.add_subplot()
    for i, r in enumerate(records):
        for key, colour, name in (("train_curve", "#2171b5", "train"),
                                  ("test_curve", "#d94801", "test")):
            if r.get(key) is None:  # run without --test_curves: no test curve
                continue
            y = np.array([np.nan if v is None else v for v in r[key]], np.float64)
            ax.plot(np.arange(1, y.size + 1), y, color=colour, alpha=0.5, linewidth=0.8,
                    label=name if i == 0 else None)
        ax.axvline(r["set_size"], color="#525252", linewidth=0.5, alpha=0.4)
    ax.set_xlabel("maps kept (greedy order of the fold's training AIS); grey: S* per fold")
    ax.set_ylabel(f"score ({records[0].get('score', '')})")
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    figures.save_figure(fig, target)
    return True


def aim1_sections(out: Path, run: dict) -> dict:
    items = []
    for label, key, folder in _items(out, run):
        name = f"{label} / {key}"
        plot = out / ASSETS / "aim1" / label / key / "curves.png"
        curves = {"src": rel(out, plot), "size": png_size(plot)} \
            if _curves_plot(folder, plot, name) else None
        top = None
        if (folder / "global_ais.npy").is_file():
            ais = np.load(folder / "global_ais.npy")
            order = np.argsort(-ais, kind="stable")[:TOP_MAPS]
            top = {"id": f"top-{label}-{key}", "caption": f"Top {TOP_MAPS} maps by global AIS",
                   "source": rel(out, folder / "global_ais.npy"), "filters": [],
                   "columns": [{"key": "rank", "label": "rank", "type": "num"},
                               {"key": "map", "label": "map", "type": "num"},
                               {"key": "ais", "label": "global AIS", "type": "num"}],
                   "rows": [{"attrs": {}, "cells": [cell(i + 1, numeric=True),
                                                    cell(int(k), numeric=True),
                                                    cell(repr(float(ais[k])), numeric=True)]}
                            for i, k in enumerate(order)], "folded": False}
        items.append({"name": name, "curves": curves, "top": top,
                      "folds": csv_table(out, folder / "folds.csv", f"folds-{label}-{key}",
                                         "Folds: S* (set_size), Full and Retained")})
    return {"tables": [t for t in (
        csv_table(out, out / "results.csv", "results", "Results per model and dataset"),
        csv_table(out, out / "ais_correlations.csv", "correlations",
                  "Global AIS correlations between datasets")) if t], "items": items}


# ---------------------------------------------------------------------------------------------
# Aim 2.


def _items(out: Path, run: dict) -> Iterable[tuple[str, str, Path]]:
    for label, _ in run["config"]["models"]:
        for key in run["datasets"]:
            if (out / label / key).is_dir():
                yield label, key, out / label / key


def _colour_bar(colormap: str) -> str:
    """A CSS gradient of the overlays' colormap (11 stops), for the large view's colour bar."""
    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
        raise ValueError(f"run.json: unknown colormap {colormap!r}") from None
    stops = [cmap(t / 10) for t in range(11)]
    return "linear-gradient(to right, " + ", ".join(
        f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f}) {i * 10}%"
        for i, (r, g, b, _) in enumerate(stops)) + ")"


def _heat_ranges(folder: Path) -> dict[str, tuple[float, float]]:
    """Raw min and max of each image's heatmap at its original size (what the overlay scales)."""
    if not (folder / hm.IDS_FILE).is_file():
        return {}
    maps = hm.read_heatmaps(folder)
    return {image_id: (float(h.min()), float(h.max()))
            for image_id, h in ((i, maps.original(k)) for k, i in enumerate(maps.image_ids))}


def _aim2_item(folder: Path) -> tuple[dict, dict, dict, Path]:
    """One Aim 2 item folder's per-image rows, overlay file names and heatmap ranges by id."""
    per_image = read_csv(folder / "per_image.csv") if (folder / "per_image.csv").is_file() else []
    files = {}
    if (folder / hm.IDS_FILE).is_file():
        manifest = json.loads((folder / hm.IDS_FILE).read_text())
        names = manifest.get("files") or [Path(i).stem for i in manifest["image_ids"]]
        files = dict(zip(manifest["image_ids"], names, strict=True))
    return {r["image_id"]: r for r in per_image}, files, _heat_ranges(folder), folder


def _match_rows(out: Path, key: str, labels: list[str]) -> dict[str, dict]:
    """Image id -> Match columns of dataset ``key``: ``match_<key>.csv`` (two models), or one
    ``match_<key>_<a>_vs_<b>.csv`` per pair (three or more; columns named ``... a vs b``)."""
    files = [(out / f"match_{key}.csv", "")]
    files += [(out / f"match_{key}_{a}_vs_{b}.csv", f" {a} vs {b}")
              for a, b in itertools.combinations(labels, 2)]
    by_id: dict[str, dict] = {}
    for path, suffix in files:
        for r in read_csv(path) if path.is_file() else []:
            by_id.setdefault(r["image_id"], {}).update(
                {k + suffix: v for k, v in r.items()
                 if k != "image_id" and not k.startswith("entropy_")})
    return by_id


def aim2_gallery(out: Path, run: dict) -> dict:
    """One row per (dataset, image): the image, each model's overlay and numbers, Match."""
    labels = [label for label, _ in run["config"]["models"]]
    columns = [{"key": "dataset", "label": "dataset", "type": "text"},
               {"key": "image", "label": "image", "type": "none"}]
    match_files = {key: _match_rows(out, key, labels) for key in run["datasets"]}
    match_keys: list[str] = []
    for by_id in match_files.values():
        for r in by_id.values():
            match_keys += [k for k in r if k not in match_keys]
    columns += [{"key": k, "label": "maxEntropy" if k == "max_entropy" else k, "type": "num"}
                for k in match_keys]
    for label in labels:
        columns += [{"key": f"overlay:{label}", "label": f"overlay\n{label}", "type": "none"},
                    {"key": f"mad:{label}", "label": f"MAD\n{label}", "type": "num"},
                    {"key": f"entropy:{label}", "label": f"entropy\n{label}", "type": "num"}]
    per_item = {(label, key): _aim2_item(folder) for label, key, folder in _items(out, run)}
    rows = []
    for key, ds in run["datasets"].items():
        images = image_dir(out, run, key)
        match = match_files.get(key, {})
        for image_id in ds["image_ids"]:
            source = images / image_id
            thumb = _thumb(out, source, key)
            full = rel(out, source) if _inside(out, source) and source.is_file() else None
            cells = [cell(ds.get("name", key), numeric=False),
                     image_cell(thumb, full, image_id, caption=f"{key} / {image_id}",
                                label=image_id)]
            cells += [cell(match.get(image_id, {}).get(k), numeric=True) for k in match_keys]
            undefined = []
            for label in labels:
                stats, files, ranges, folder = per_item.get((label, key), ({}, {}, {}, None))
                r = stats.get(image_id, {})
                png = folder / "overlays" / f"{files.get(image_id, '')}.png" if folder else None
                lo, hi = ranges.get(image_id, (None, None))
                ok = r.get("defined", "") != "False"
                if not ok:
                    undefined.append(label)
                has = png is not None and png.is_file()
                cells += [image_cell(_thumb(out, png) if has else None,
                                     rel(out, png) if has else None, f"{label} overlay",
                                     caption=f"{label} / {key} / {image_id}", lo=lo, hi=hi,
                                     flag="" if ok else "undefined heatmap"),
                          cell(r.get("mad"), numeric=True), cell(r.get("entropy"), numeric=True)]
            rows.append({"attrs": {"data-id": f"{key}/{image_id}", "data-dataset": key,
                                   "data-undefined": " ".join(undefined)}, "cells": cells})
    filters = [{"attr": "dataset", "label": "dataset", "values": list(run["datasets"])}]
    return as_gallery({"id": "gallery", "caption": f"{len(rows)} images", "source": None,
                       "columns": columns, "rows": rows,
                       "filters": filters if len(run["datasets"]) > 1 else [], "folded": False})


def aim2_sections(out: Path, run: dict) -> dict:
    return {"tables": [t for t in (
        csv_table(out, out / "models.csv", "models", "Per model and dataset"),
        csv_table(out, out / "datasets.csv", "datasets", "Across models, per dataset "
                  "(Match median beside the paper's)"),
        csv_table(out, out / "ais_correlations.csv", "correlations",
                  "Global AIS correlations")) if t],
            "gallery": aim2_gallery(out, run),
            "colour_bar": _colour_bar(run["config"].get("colormap", "jet"))}


# ---------------------------------------------------------------------------------------------
# Aim 3.


def aim3_gallery(out: Path, run: dict) -> dict:
    """One row per (model, dataset, image): the Figure 4 panel and RR per source and p."""
    rows, columns, panels = [], None, 0
    for label, key, folder in _items(out, run):
        if not (folder / "per_image.csv").is_file():
            continue
        table = read_csv(folder / "per_image.csv")
        sources = list(dict.fromkeys(r["source"] for r in table))
        percents = [k[3:] for k in table[0] if k.startswith("rr_")] if table else []
        if columns is None:
            columns = [{"key": "model", "label": "model", "type": "text"},
                       {"key": "dataset", "label": "dataset", "type": "text"},
                       {"key": "image_id", "label": "image id", "type": "text"},
                       {"key": "figure", "label": "image", "type": "none"}]
            columns += [{"key": f"{s}:rr_{p}", "label": f"RR {p}%\n{s}", "type": "num"}
                        for p in percents for s in sources]
        by = {(r["source"], r["image_id"]): r for r in table}
        images = image_dir(out, run, key)
        for image_id in run["datasets"][key]["image_ids"]:
            panel = folder / "figure4" / f"{Path(image_id).stem}.png"
            if panel.is_file():
                panels += 1
                pic = image_cell(_thumb(out, panel), rel(out, panel), f"{image_id} contours",
                                 caption=f"{label} / {key} / {image_id}", wide=True)
            else:
                source = images / image_id
                pic = image_cell(_thumb(out, source, key),
                                 rel(out, source) if _inside(out, source) else None, image_id,
                                 caption=f"{key} / {image_id} (no per-image Figure 4: run with "
                                 "--per_image_figures)")
            cells = [cell(label, numeric=False), cell(key, numeric=False),
                     cell(image_id, numeric=False), pic]
            for c in columns[4:]:
                source_name, _, metric = c["key"].partition(":")
                r = by.get((source_name, image_id), {})
                case = r.get(f"case_{metric[3:]}", "")
                cells.append(cell(r.get(metric), numeric=True,
                                  title=case if case and case != "finite" else ""))
            rows.append({"attrs": {"data-id": f"{label}/{key}/{image_id}", "data-dataset": key,
                                   "data-model": label}, "cells": cells})
    filters = [{"attr": "model", "label": "model",
                "values": [m for m, _ in run["config"]["models"]]}]
    if len(run["datasets"]) > 1:
        filters.append({"attr": "dataset", "label": "dataset", "values": list(run["datasets"])})
    if columns and panels:
        columns[3]["label"] = "Figure 4 contours"
    return as_gallery({"id": "gallery", "caption": f"{len(rows)} rows (model × image)",
                       "source": None, "columns": columns or [], "rows": rows,
                       "filters": filters, "folded": False, "panels": panels},
                      wide=panels > 0)


def aim3_sections(out: Path, run: dict) -> dict:
    return {"tables": [t for t in (
        csv_table(out, out / "table1.csv", "table1", "Table 1: RR, ours beside the paper's"),
        csv_table(out, out / "baseline_tests.csv", "baselines",
                  "AIS against the null baselines (Wilcoxon)", folded=True)) if t],
            "gallery": aim3_gallery(out, run)}


# ---------------------------------------------------------------------------------------------
# The page.


def aim_of(run: dict) -> str:
    """``'aim1'``, ``'aim2'`` or ``'aim3'`` from run.json's versions."""
    found = [aim for key, aim in AIMS.items() if key in run.get("versions", {})]
    if len(found) != 1:
        raise ValueError("run.json names no single aim (its versions: "
                         f"{sorted(run.get('versions', {}))})")
    return found[0]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("ais_jax.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def context(out: str | os.PathLike) -> dict:
    """Everything the page shows, read from ``out`` (thumbnails and plots written on the way).

    Raises:
      FileNotFoundError: no ``run.json`` in ``out`` (not a results folder).
      ValueError: a run.json that names no aim.
    """
    out = Path(out)
    if not (out / "run.json").is_file():
        raise FileNotFoundError(f"no run.json in {out}: not a results folder of Aim 1, 2 or 3")
    run = json.loads((out / "run.json").read_text())
    aim = aim_of(run)
    demo = json.loads((out / "demo.json").read_text()) if (out / "demo.json").is_file() else {}
    sections = {"aim1": aim1_sections, "aim2": aim2_sections, "aim3": aim3_sections}[aim]
    figures_ = [{"src": rel(out, p), "name": p.name, "size": png_size(p)}
                for p in sorted(out.glob("*.png"), key=lambda p: (not p.name.startswith("figure"),
                                                                 p.name))]
    files = [{"href": rel(out, p), "name": p.name} for p in sorted(out.iterdir())
             if p.suffix in TABLE_SUFFIXES and p.is_file()]
    subreports = [{"href": rel(out, p), "name": p.parent.name}
                  for p in sorted(out.glob(f"*/{REPORT_FILE}"))]
    summary = (out / "summary.md").read_text() if (out / "summary.md").is_file() else ""
    return {"aim": aim, "title": TITLES[aim], "folder": out.resolve().name,
            "synthetic": bool(demo.get("synthetic")),
            "models": [label for label, _ in run["config"]["models"]],
            "datasets": list(run["datasets"]), "versions": run.get("versions", {}),
            "summary": markdown_html(summary), "figures": figures_, "files": files,
            "subreports": subreports, **sections(out, run)}


def write_report(out: str | os.PathLike) -> Path:
    """Writes ``out/report.html`` (and ``out/report_files/``) from the results in ``out``.

    Returns:
      The page's path.

    Raises:
      FileNotFoundError: no ``run.json`` in ``out``.
      ValueError: a run.json that names no aim.
      ais_jax.storage.WriteError: the page or a thumbnail cannot be written.
    """
    out = Path(out)
    page = _environment().get_template("report.html.j2").render(**context(out))
    path = out / REPORT_FILE
    storage.write_text(path, page)
    log.info("report: %s (open it in a browser)", path)
    return path
