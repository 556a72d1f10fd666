"""Shared test fixtures: where the project root, the samples and the reference corpus are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
#: The reference corpus lives beside the checkout (``../shared/corpus``); KRBTRACE_CORPUS overrides it.
CORPUS = Path(os.environ.get("KRBTRACE_CORPUS", ROOT.parent / "shared" / "corpus"))


def corpus_path(*parts: str) -> Path:
    """A path inside the reference corpus; skips the calling test (with the reason) when the corpus is absent."""
    if not CORPUS.is_dir():
        pytest.skip(
            f"reference corpus not found at {CORPUS} (set KRBTRACE_CORPUS or place ../shared beside the checkout)"
        )
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not in this copy of the corpus")
    return path


@pytest.fixture
def corpus() -> Path:
    """The reference corpus folder (the test is skipped when it is absent)."""
    return corpus_path()
