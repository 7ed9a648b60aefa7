"""Graph passes, each a named function Graph -> Graph, run as a printable pipeline."""

from edgec.optimize.pipeline import DEFAULT_PASSES, run_pipeline

__all__ = ["DEFAULT_PASSES", "run_pipeline"]
