// report.html's whole script: sort a table by a column, filter its rows, open a picture large.
// No library, no network; without it the page still shows everything (links open pictures).
"use strict";
(function () {
  function key(td, type) {
    if (type === "num") return td.dataset.n === undefined ? NaN : Number(td.dataset.n);
    return td.textContent;
  }
  function sortBy(th, order) {
    const row = th.parentNode, type = th.dataset.type;
    const index = Array.prototype.indexOf.call(row.children, th);
    const desc = order ? order === "descending" : th.getAttribute("aria-sort") === "ascending";
    for (const other of row.children) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", desc ? "descending" : "ascending");
    const body = th.closest("table").tBodies[0], sign = desc ? -1 : 1;
    const rows = Array.from(body.rows, (tr, i) => [key(tr.cells[index], type), i, tr]);
    rows.sort((a, b) => {
      const x = a[0], y = b[0];
      if (type === "num") {
        const xn = Number.isNaN(x), yn = Number.isNaN(y);
        if (xn || yn) return xn === yn ? a[1] - b[1] : (xn ? 1 : -1); // NaN last, either way
        if (x !== y) return sign * (x < y ? -1 : 1);
      } else if (x !== y) {
        return sign * x.localeCompare(y, undefined, {numeric: true});
      }
      return a[1] - b[1];
    });
    const frag = document.createDocumentFragment();
    for (const r of rows) frag.appendChild(r[2]);
    body.appendChild(frag);
  }
  function filter(id) {
    const table = document.getElementById(id);
    const selects = document.querySelectorAll('select.filter[data-table="' + id + '"]');
    let shown = 0;
    for (const tr of table.tBodies[0].rows) {
      let ok = true;
      for (const s of selects) if (s.value && tr.dataset[s.dataset.attr] !== s.value) ok = false;
      tr.hidden = !ok;
      if (ok) shown += 1;
    }
    const count = document.querySelector('.count[data-table="' + id + '"]');
    if (count) count.textContent = shown + " of " + table.tBodies[0].rows.length + " rows shown";
  }
  for (const th of document.querySelectorAll("table.sortable th[data-type=num], " +
                                             "table.sortable th[data-type=text]")) {
    th.addEventListener("click", () => sortBy(th));
    th.addEventListener("keydown", (e) => { if (e.key === "Enter") sortBy(th); });
  }
  for (const s of document.querySelectorAll("select.filter")) {
    s.addEventListener("change", () => filter(s.dataset.table));
    filter(s.dataset.table);
  }
  // #sort=<column key>[:descending] sorts the gallery on opening (a link can carry a view).
  const m = /sort=([^&:]+)(?::(ascending|descending))?/.exec(decodeURIComponent(location.hash));
  if (m) {
    for (const th of document.querySelectorAll("table.sortable th")) {
      if (th.dataset.key === m[1]) { sortBy(th, m[2] || "ascending"); break; }
    }
  }
  const dialog = document.getElementById("zoom");
  if (!dialog) return;
  const img = document.getElementById("zoom-img"), bar = document.getElementById("zoom-bar");
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a.zoom");
    if (!a) return;
    e.preventDefault();
    img.src = a.getAttribute("href");
    img.alt = a.dataset.caption;
    document.getElementById("zoom-caption").textContent = a.dataset.caption;
    bar.hidden = a.dataset.lo === undefined;
    document.getElementById("zoom-lo").textContent = a.dataset.lo || "";
    document.getElementById("zoom-hi").textContent = a.dataset.hi || "";
    dialog.showModal();
  });
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
})();
