"""The HTML report as a document: self-contained, escaped, cut stated; and the notebook view of an analysis.

The page's behaviour in a real browser is tested in test_html_browser.py.
"""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from PIL import Image
from test_plot_frames import build, large

from krbtrace import html_report


class Doc(HTMLParser):
    """Collects tags with their attributes, and the text of the page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


@pytest.fixture(scope="module")
def built():
    return build()


@pytest.fixture(scope="module")
def page(built) -> str:
    return html_report.render_html(built)


def png_of(src: str) -> Image.Image:
    assert src.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))


def test_self_contained(page: str) -> None:
    doc = Doc(page)
    assert not doc.find("link"), "no external stylesheet"
    assert all("src" not in a for a in doc.find("script")), "no external script"
    imgs = doc.find("img")
    assert len(imgs) == 5  # clock offsets, two swimlanes, errors over time, top failing
    for a in imgs:
        with png_of(str(a["src"])) as im:
            assert im.width > 400 and im.height > 150
    csp = doc.find("meta", **{"http-equiv": "Content-Security-Policy"})
    assert csp and "default-src 'none'" in str(csp[0]["content"])
    assert "http://" not in page and "https://" not in page


def test_findings_with_evidence_and_remedy(built, page: str) -> None:
    doc = Doc(page)
    articles = doc.find("article")
    assert [a["data-rule"] for a in articles] == built.findings["rule"].to_list()
    text = "".join(doc.text)
    for f in built.findings.iter_rows(named=True):
        assert f["remedy"] in text
        assert f["explanation"] in text  # unescaped back by the parser: the page shows it literally
        for ev in f["evidence"]:
            assert ev in text
    # the index at the top links every finding
    links = [str(a["href"]) for a in doc.find("a") if str(a.get("href", "")).startswith("#finding-")]
    assert links == [f"#{a['id']}" for a in articles] and len(links) == built.findings.height
    buttons = {b["data-rule"]: b["data-rows"] for b in doc.find("button") if b.get("data-rows")}
    assert buttons["missing_spn"] == " ".join(str(r) for r in built.rows_of[("carol", "KDC_ERR_S_PRINCIPAL_UNKNOWN")])


def test_hostile_text_is_escaped(page: str) -> None:
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the report's own filter script


def test_summary_and_offsets(built, page: str) -> None:
    text = "".join(Doc(page).text)
    assert "25 (ok: 12, failed: 8, expected: 3, unanswered: 2)" in text  # counted from the scenario by hand
    assert "3 (1 high, 2 medium)" in text
    assert "2026-03-14 09:26:00.000Z .. 2026-03-14 09:28:50.003Z" in text
    rows = Doc(page).find("td", **{"class": "bad"})
    assert len(rows) == 2  # 10.0.0.23 (+7m30s) and 10.0.0.31 (-6m40s) are outside ±5 min


def test_timeline_table_has_every_row_when_small(built, page: str) -> None:
    doc = Doc(page)
    rows = [a for a in doc.find("tr") if a.get("data-row") is not None]
    assert len(rows) == built.timeline.height
    assert sorted(int(str(a["data-row"])) for a in rows) == built.timeline["row_id"].to_list()
    assert not doc.find("p", id="cut")
    failed = sum(1 for a in rows if a["data-outcome"] == "failed" and a["data-error"] == "1")
    assert failed == 8  # one KRB-ERROR per failed exchange


def test_timeline_cut_is_stated_and_keeps_failures_first() -> None:
    big = large(principals=3000, per=4)
    text = html_report.render_html(big, max_rows=100)
    doc = Doc(text)
    rows = [a for a in doc.find("tr") if a.get("data-row") is not None]
    assert len(rows) == 100
    assert all(a["data-outcome"] == "failed" for a in rows)
    n_failed_rows = big.timeline.filter(pl.col("outcome") == "failed").height
    assert n_failed_rows == 3000 // 7 * 4 * 2 + 4 * 2  # users 0, 7, ..., 2996: 429 failing users, 4 exchanges, 2 rows
    cut = "".join(doc.text)
    assert f"Table cut to 100 of {big.timeline.height:,} rows" in cut
    assert f"(100 of {n_failed_rows:,})" in cut


def test_empty_analysis_still_renders() -> None:
    text = html_report.render_html({})
    assert "No rule matched." in text and "No clock could be compared." in text
    assert '<table id="timeline">' in text


def test_write_html(built, tmp_path: Path) -> None:
    out = html_report.write_html(built, tmp_path / "r.html", title="Incident 42 <x>")
    text = out.read_text(encoding="utf-8")
    assert "<title>Incident 42 &lt;x&gt;</title>" in text


def test_repr_html_for_notebooks(built) -> None:
    text = html_report.repr_html(built)
    doc = Doc(text)
    assert "<script" not in text  # notebooks do not run scripts of untrusted output anyway
    body = "".join(doc.text)
    for title in built.findings["title"]:
        assert title in body
    (img,) = doc.find("img")
    with png_of(str(img["src"])) as im:
        assert im.format == "PNG" and im.width >= 500
    assert len(text) < 200_000


def test_attempts_in_the_summary(built) -> None:
    attempts = pl.DataFrame(
        {"attempt_id": [1, 2, 3], "outcome": ["failed", "ok", "failed"]}, schema_overrides={"attempt_id": pl.Int64}
    )
    facts = dict(html_report.summary_facts({**built.frames, "attempts": attempts}))
    assert facts["attempts (AS → TGS → AP)"] == "3 (failed: 2, ok: 1)"
    assert "attempts (AS → TGS → AP)" not in dict(html_report.summary_facts(built))  # the scenario has none


def test_parse_issues_in_the_summary(built) -> None:
    issues = pl.DataFrame(
        {
            "source": ["a.pcap", "a.pcap", "b.evtx"],
            "kind": ["tcp_gap", "asn1_decode_error", "tcp_gap"],
            "count": [2, 2, 1],
        }
    )
    facts = dict(html_report.summary_facts({**built.frames, "issues": issues}))
    assert facts["parse issues"] == "5 (tcp_gap: 3, asn1_decode_error: 2)"
    assert "parse issues" not in dict(html_report.summary_facts(built))


def test_hostile_frames_render() -> None:
    from test_plot import hostile_frames

    frames = hostile_frames()
    text = html_report.render_html(frames)
    doc = Doc(text)
    assert [a["data-rule"] for a in doc.find("article")] == ["r1", "r2"]
    assert "<img src=x" not in text  # a principal name from the wire stays text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "+277777h46m" in "".join(doc.text)  # a 1e9 s offset is shown, not a crash
    assert "krbtrace-analysis" in html_report.repr_html(frames)


def test_embedded_text_report_is_cut_the_findings_section_is_not() -> None:
    from test_plot_frames import large

    from krbtrace.analysis import analyze_frame

    a = analyze_frame(large(400).timeline)
    n = a.findings.height
    assert n > html_report.TEXT_FINDINGS
    page = html_report.render_html(a)
    text = page[page.index("<summary>text report</summary>") : page.index("</pre></details>")]
    assert f"== Findings ({n}" in text  # the header still gives the whole count
    assert f"{html_report.TEXT_FINDINGS}. [" in text and f"{html_report.TEXT_FINDINGS + 1}. [" not in text
    assert f"... {n - html_report.TEXT_FINDINGS} more findings" in text
    assert page.count('<article id="finding-') == n and f"<h2>Findings ({n})</h2>" in page
