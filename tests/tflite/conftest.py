"""The TFLite corpus tests share the corpus fixture (fetched by `python -m tests.corpus.fetch`)."""

from tests.corpus.conftest import corpus_ready  # noqa: F401
