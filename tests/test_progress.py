"""Progress on a terminal for ``krbtrace timeline`` (both paths) and the pieces behind it (krbtrace/progress.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from krbtrace import progress as progress_mod
from krbtrace.cli import main
from krbtrace.progress import ProgressLine, counted, terminal_progress

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "evtx" / "dc01-security.evtx"
MANIFEST_ROWS = 20  # the Security sample's Kerberos events (samples/evtx/MANIFEST)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_counted_passes_rows_through_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_mod, "PROGRESS_EVERY", 3)
    calls: list[tuple[str, int, int | None]] = []
    rows = list(counted(iter(range(7)), lambda *c: calls.append(c)))
    assert rows == list(range(7))
    assert calls == [("read", 3, None), ("read", 6, None), ("read", 7, None)]
    calls.clear()
    assert list(counted(iter([]), lambda *c: calls.append(c))) == [] and calls == [("read", 0, None)]


def test_only_on_a_terminal_and_when_wanted() -> None:
    assert isinstance(terminal_progress(Terminal()), ProgressLine)
    assert terminal_progress(Terminal(), wanted=False) is None
    assert terminal_progress(io.StringIO()) is None


@pytest.mark.parametrize("to_file", [True, False])
def test_timeline_draws_then_clears_progress(
    to_file: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    args = ["timeline", str(SAMPLE), *(["-o", str(tmp_path / "t.parquet")] if to_file else ["--limit", "1"])]
    assert main(args) == 0
    text = err.getvalue()
    assert f"\r\x1b[Kkrbtrace: read {MANIFEST_ROWS} timeline rows\r\x1b[K" in text  # drawn, then cleared
    if to_file:
        assert text.endswith(f"wrote {MANIFEST_ROWS} rows to {tmp_path / 't.parquet'}\n")
    else:
        assert "... 19 more rows" in capsys.readouterr().out


def test_no_progress_and_no_terminal_draw_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for err, extra in ((Terminal(), ["--no-progress"]), (io.StringIO(), [])):
        monkeypatch.setattr("sys.stderr", err)
        assert main(["timeline", str(SAMPLE), "-o", str(tmp_path / "t.parquet"), *extra]) == 0
        assert "\x1b[K" not in err.getvalue() and "wrote 20 rows" in err.getvalue()


def test_an_unusable_input_is_reported_on_its_own_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The progress line is cleared before the error is printed, so that the error does not follow it on one line."""
    monkeypatch.setattr(progress_mod, "PROGRESS_EVERY", 1)  # drawn from the first row on
    bad = tmp_path / "bad.evtx"
    bad.write_bytes(b"ElfFile\x00" + b"\xff" * 100)  # cut inside the file header
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    assert main(["timeline", str(SAMPLE), str(bad), "-o", str(tmp_path / "t.parquet")]) == 2
    drawn, _, rest = err.getvalue().partition(f"krbtrace: {bad}: ")
    assert "read 1 timeline rows" in drawn and drawn.endswith("\r\x1b[K")  # cleared right before the error
    assert rest.startswith("EVTX file cut inside its 4096-byte header") and rest.endswith(
        f"wrote 20 rows to {tmp_path / 't.parquet'}\n"
    )
