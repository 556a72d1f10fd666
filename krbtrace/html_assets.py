"""The inline style and script of the HTML report (:mod:`krbtrace.html_report`), and its Content-Security-Policy.

The policy allows nothing but inline style, inline script and ``data:`` images, so the report cannot fetch anything
even if some escaped text were to slip through; the script filters the timeline table in the page.
"""

from __future__ import annotations

from typing import Final

CSP: Final = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

CSS: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1280px;padding:0 18px 40px;
color:#212121}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:28px}
.meta{color:#616161}.num{text-align:right;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #e0e0e0;padding:3px 7px;text-align:left;
vertical-align:top}th{background:#f5f5f5}
.finding{border:1px solid #ddd;border-left:6px solid #90a4ae;border-radius:4px;padding:8px 14px;margin:12px 0}
.finding h3{margin:2px 0 6px;font-size:16px}.finding dl{display:grid;grid-template-columns:max-content 1fr;
gap:2px 12px;margin:6px 0}.finding dt{color:#616161}.finding dd{margin:0}
.sev{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-size:12px;text-transform:uppercase}
.sev-critical{background:#b71c1c;border-left-color:#b71c1c}.sev-high{background:#e53935;border-left-color:#e53935}
.sev-medium{background:#ef6c00;border-left-color:#ef6c00}.sev-low{background:#f9a825;border-left-color:#f9a825}
.sev-info{background:#78909c;border-left-color:#78909c}
.finding.sev-critical,.finding.sev-high,.finding.sev-medium,.finding.sev-low,.finding.sev-info{background:#fff}
.remedy{background:#e8f5e9;padding:6px 10px;border-radius:3px;white-space:pre-wrap}
figure{margin:10px 0}figure img{max-width:100%;border:1px solid #eee}
#timeline{font-size:12px}#timeline td{white-space:nowrap}
tr.o-failed td{background:#ffebee}tr.o-unanswered td{background:#fff3e0}tr.o-expected td{color:#757575}
.bad{color:#c62828;font-weight:600}.controls{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:8px 0}
.cut{background:#fffde7;border:1px solid #fff59d;padding:4px 8px}.scroll{overflow-x:auto}
"""

#: Filters the timeline table: free text, phase, outcome, errors only, or the rows a finding cites.
JS: Final = """
(function () {
  "use strict";
  var table = document.getElementById("timeline");
  if (!table) { return; }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
  var q = document.getElementById("f-text"), ph = document.getElementById("f-phase");
  var oc = document.getElementById("f-outcome"), er = document.getElementById("f-errors");
  var shown = document.getElementById("f-count"), only = document.getElementById("f-finding");
  var picked = null;
  function apply() {
    var s = q.value.trim().toLowerCase(), n = 0;
    rows.forEach(function (r, i) {
      var ok = (!s || texts[i].indexOf(s) >= 0) && (!ph.value || r.dataset.phase === ph.value) &&
        (!oc.value || r.dataset.outcome === oc.value) && (!er.checked || r.dataset.error === "1") &&
        (!picked || picked.has(r.dataset.row));
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
  }
  [q, ph, oc, er].forEach(function (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); });
  document.querySelectorAll("button[data-rows]").forEach(function (b) {
    b.addEventListener("click", function () {
      picked = new Set(b.dataset.rows.split(" ").filter(Boolean));
      only.hidden = false;
      only.querySelector("span").textContent = b.dataset.rule;
      apply();
      table.scrollIntoView();
    });
  });
  only.querySelector("button").addEventListener("click", function () { picked = null; only.hidden = true; apply(); });
  var m = /^#q=(.*)$/.exec(window.location.hash);  // report.html#q=alice opens filtered: a link to share
  if (m) { q.value = decodeURIComponent(m[1]); }
  apply();
  document.documentElement.dataset.ready = "1";
})();
"""
