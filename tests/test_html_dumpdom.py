"""The HTML report in headless Chromium without selenium: ``--dump-dom`` for the DOM after the script ran,
``--enable-logging=stderr`` for the console, ``--screenshot`` for pixels. Runs wherever Debian's chromium is.

A page with a deliberate error proves the console check can fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from test_html_report import Doc
from test_plot_frames import SCENARIO, build

from krbtrace import html_report

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
#: Chromium prints each console message of the page as an INFO line tagged CONSOLE.
CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\] (.*)")


def chromium(url: str, *args: str) -> tuple[str, list[str]]:
    """(stdout, console messages) of one headless Chromium run on ``url``."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", *args, url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    return done.stdout, CONSOLE.findall(done.stderr)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return html_report.write_html(build(), tmp_path_factory.mktemp("dump") / "report.html")


def test_console_check_catches_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    _dom, console = chromium(bad.as_uri(), "--dump-dom")
    assert any("undefinedFunction" in m for m in console)


def test_script_runs_without_console_messages(report: Path) -> None:
    dom, console = chromium(report.as_uri(), "--dump-dom")
    assert console == []
    assert 'data-ready="1"' in dom  # set by the last line of the report's script
    doc = Doc(dom)
    assert len(doc.find("article")) == 3
    assert not [a for a in doc.find("tr") if a.get("data-row") is not None and "hidden" in a]


def test_filter_from_the_link(report: Path) -> None:
    dom, console = chromium(report.as_uri() + "#q=carol", "--dump-dom")
    assert console == []
    rows = [a for a in Doc(dom).find("tr") if a.get("data-row") is not None]
    shown = [a for a in rows if "hidden" not in a]
    want = sum(st.times * 2 for st in SCENARIO if st.client == "carol")
    assert len(shown) == want == 6
    assert len(rows) == build().timeline.height
    assert re.search(rf'<b id="f-count">{want}</b>', dom)


def test_screenshot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    _out, console = chromium(report.as_uri(), f"--screenshot={shot}", "--window-size=1280,1600")
    assert console == []
    with Image.open(shot) as im:
        assert im.size == (1280, 1600)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 50
        assert any(abs(r - 0xE5) < 8 and abs(g - 0x39) < 8 and abs(b - 0x35) < 8 for _n, (r, g, b) in colours)
