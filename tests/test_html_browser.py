"""The HTML report in a real headless Chromium (Debian's chromium + chromedriver, driven by selenium).

It loads with no console errors (a page with a deliberate error proves the check can fail), shows the findings,
the filters hide and show the right rows, and a screenshot shows content. Skipped with the reason when the
browser, the driver or selenium is absent.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLES
from PIL import Image
from test_plot_cli import manifest
from test_plot_frames import SCENARIO, build

import krbtrace
from krbtrace import html_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(f"chromium or chromedriver not found ({CHROMIUM}, {CHROMEDRIVER})", allow_module_level=True)

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where Chromium refuses its sandbox
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.add_argument("--window-size=1300,1600")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    try:
        drv = webdriver.Chrome(options=opts, service=service)
    except Exception as exc:  # a broken browser install is an environment problem, said plainly
        pytest.skip(f"headless chromium did not start: {exc}")
    try:
        yield drv
    finally:
        drv.quit()


@pytest.fixture(scope="module")
def built():
    return build()


@pytest.fixture(scope="module")
def report(built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return html_report.write_html(built, tmp_path_factory.mktemp("html") / "report.html")


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


@pytest.fixture
def loaded(driver: webdriver.Chrome, report: Path) -> webdriver.Chrome:
    driver.get(report.as_uri())
    return driver


def visible_rows(driver: webdriver.Chrome) -> list[str]:
    """row ids of the timeline rows the page shows now."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#timeline tbody tr')).filter(r => !r.hidden)"
        ".map(r => r.dataset.row);"
    )


def test_console_check_catches_errors(driver: webdriver.Chrome, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    driver.get(bad.as_uri())
    assert any("undefinedFunction" in m for m in console_errors(driver))


def test_loads_without_console_errors(loaded: webdriver.Chrome) -> None:
    assert loaded.title == "krbtrace report"
    assert console_errors(loaded) == []
    with pytest.raises(NoAlertPresentException):
        loaded.switch_to.alert.text  # noqa: B018 - the hostile explanation text must not run
    # every embedded figure decoded (a broken data URL leaves naturalWidth at 0)
    widths = loaded.execute_script("return Array.from(document.images).map(i => i.naturalWidth);")
    assert len(widths) == 5 and min(widths) > 400


def test_shows_the_findings(loaded: webdriver.Chrome, built) -> None:
    cards = loaded.find_elements(By.CSS_SELECTOR, "article.finding")
    assert [c.get_attribute("data-rule") for c in cards] == built.findings["rule"].to_list()
    assert all(c.is_displayed() for c in cards)
    first = cards[0].text
    assert "Client clock outside the 5-minute tolerance" in first
    assert "HIGH" in first  # the badge is upper-cased by CSS: the text as displayed
    assert "w32tm /resync" in first
    assert "<script>alert(1)</script>" in cards[1].text  # shown literally, not run


def test_text_filter(loaded: webdriver.Chrome, built) -> None:
    assert len(visible_rows(loaded)) == built.timeline.height
    box = loaded.find_element(By.ID, "f-text")
    box.send_keys("carol")
    carol = [st for st in SCENARIO if st.client == "carol"]
    want = sum(st.times * 2 for st in carol)  # request + reply or error for each exchange
    assert len(visible_rows(loaded)) == want == 6
    assert loaded.find_element(By.ID, "f-count").text == str(want)
    box.clear()
    box.send_keys("no such principal anywhere")
    assert visible_rows(loaded) == []
    assert loaded.find_element(By.ID, "f-count").text == "0"


def test_phase_outcome_and_error_filters(loaded: webdriver.Chrome) -> None:
    Select(loaded.find_element(By.ID, "f-phase")).select_by_value("AP")
    loaded.find_element(By.ID, "f-errors").click()
    # the AP errors: svc_backup's two KRB_AP_ERR_SKEW
    rows = loaded.find_elements(By.CSS_SELECTOR, "#timeline tbody tr:not([hidden])")
    assert len(rows) == 2
    assert all("KRB_AP_ERR_SKEW" in r.text and "svc_backup" in r.text for r in rows)
    loaded.find_element(By.ID, "f-errors").click()
    Select(loaded.find_element(By.ID, "f-phase")).select_by_value("")
    Select(loaded.find_element(By.ID, "f-outcome")).select_by_value("unanswered")
    assert len(visible_rows(loaded)) == 2  # dave's two unanswered AS-REQs


def test_finding_button_shows_its_rows(loaded: webdriver.Chrome, built) -> None:
    button = loaded.find_element(By.CSS_SELECTOR, "button[data-rule='missing_spn']")
    button.click()
    want = sorted(str(r) for r in built.rows_of[("carol", "KDC_ERR_S_PRINCIPAL_UNKNOWN")])
    assert sorted(visible_rows(loaded)) == want
    assert loaded.find_element(By.ID, "f-finding").is_displayed()
    loaded.find_element(By.CSS_SELECTOR, "#f-finding button").click()
    assert len(visible_rows(loaded)) == built.timeline.height
    assert console_errors(loaded) == []


def test_screenshot_shows_content(loaded: webdriver.Chrome, tmp_path: Path) -> None:
    png = loaded.get_screenshot_as_png()
    (tmp_path / "report.png").write_bytes(png)
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        assert im.width >= 1000 and im.height >= 800
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 50  # text, badges, tables: not a blank page
        # the red of the HIGH severity badge (#e53935) is on the first screen
        assert any(abs(r - 0xE5) < 8 and abs(g - 0x39) < 8 and abs(b - 0x35) < 8 for _n, (r, g, b) in colours)


def test_report_of_the_shipped_samples(driver: webdriver.Chrome, tmp_path: Path) -> None:
    inputs = [SAMPLES / "kdc" / "04_server_unknown.pcap", SAMPLES / "evtx" / "dc01-security.evtx"]
    if not all(p.exists() for p in inputs):
        pytest.skip("the real-KDC capture or the DC log sample is absent on this branch")
    a = krbtrace.analyze(*inputs)
    page = html_report.write_html(a, tmp_path / "samples.html")
    driver.get(page.as_uri())
    assert console_errors(driver) == []
    cards = driver.find_elements(By.CSS_SELECTOR, "article.finding")
    assert len(cards) == a.findings.height > 0
    assert any("HTTP/nosuch.example.test" in c.text for c in cards)  # the unknown SPN, from both sources
    assert len(visible_rows(driver)) == a.timeline.height
    driver.find_element(By.ID, "f-text").send_keys("KDC_ERR_S_PRINCIPAL_UNKNOWN")
    # one row per unknown-SPN KRB-ERROR of the capture and per failure event of the DC log, as the manifests say
    in_capture = manifest("04_server_unknown.pcap").count("KRB-ERROR:7")
    evtx_rows = (SAMPLES / "evtx" / "MANIFEST").read_text(encoding="utf-8").splitlines()
    in_log = sum(
        1 for ln in evtx_rows if ln.startswith("dc01-security.evtx\t") and "\tKDC_ERR_S_PRINCIPAL_UNKNOWN\t" in ln
    )
    assert (in_capture, in_log) == (2, 1)
    assert len(visible_rows(driver)) == in_capture + in_log
