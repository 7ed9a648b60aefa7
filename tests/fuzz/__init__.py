"""edgec's fuzz harness (issue 14): mutated seed models, bad CLI/API input and tampered bundles,
each case run in its own forked child and classified (tests/fuzz/core.py). Run a campaign with
`python -m tests.fuzz --cases N --seed S [--jobs J] [--json out.json]`; CI runs
tests/fuzz/test_fuzz.py. A case is reproducible from (seed, index) with the same harness."""
