"""examples/investigation.ipynb runs top to bottom in a real python3 kernel and shows its figures.

The notebook asserts its own conclusions (the skewed host, the missing SPN), so a wrong analysis fails here too.
Skipped with the reason when the shipped samples it reads are absent on this branch.
"""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import pytest
from conftest import ROOT
from PIL import Image

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")

NOTEBOOK = ROOT / "examples" / "investigation.ipynb"
#: Inputs are named in the notebook as SAMPLES / "<relative path>"; the test reads them from its source.
INPUT = re.compile(r"SAMPLES\s*/\s*\"([^\"]+)\"")


def inputs(nb: object) -> list[Path]:
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")  # type: ignore[attr-defined]
    return [ROOT / "samples" / p for p in INPUT.findall(source)]


@pytest.mark.slow
def test_investigation_notebook_runs_and_shows_figures(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    needed = inputs(nb)
    assert needed, "the notebook names its sample inputs"
    missing = [str(p.relative_to(ROOT)) for p in needed if not p.exists()]
    if missing:
        pytest.skip(f"samples the notebook reads are absent on this branch: {', '.join(missing)}")
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    # the kernel imports this checkout's krbtrace, whatever is installed; it writes its report into tmp_path
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    env["KRBTRACE_OUT"] = str(tmp_path)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    client.execute(env=env)  # raises CellExecutionError, naming the cell, on any error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    pngs = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 4, f"expected the swimlane, clock, errors and top-failing figures, got {len(pngs)} images"
    for data in pngs:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 150
    # evaluating the Analysis shows its HTML view (summary, findings, figure)
    htmls = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("krbtrace-analysis" in h and "data:image/png;base64," in h for h in htmls)
    report = tmp_path / "investigation.html"
    assert report.exists() and report.stat().st_size > 10_000
