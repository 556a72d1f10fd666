"""The style of docs/architecture.md, enforced: ruff's lint rules and formatter over the whole tree."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    if (
        shutil.which("ruff") is None
        and subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True, check=False).returncode
        != 0
    ):
        pytest.skip("ruff is not installed (it comes with the test extra: pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint_is_clean():
    res = _ruff("check", "--no-cache", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_format_is_clean():
    res = _ruff("format", "--no-cache", "--check", ".")
    assert res.returncode == 0, res.stdout + res.stderr
