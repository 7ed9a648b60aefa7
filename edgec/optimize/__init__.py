"""Graph passes, each a named function Graph -> Graph. The pass lists and the runner live in
edgec/pipeline.py."""
