"""The corpus tests need the fetched models (`python -m tests.corpus.fetch`, run by .ci/run):
under CI a missing model is a failure, elsewhere the tests skip with the command to run."""

from __future__ import annotations

import os

import pytest

from tests.corpus.fetch import missing


@pytest.fixture(scope="session")
def corpus_ready() -> None:
    gone = missing()
    if gone:
        msg = f"corpus models not fetched ({', '.join(gone)}): python -m tests.corpus.fetch"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
