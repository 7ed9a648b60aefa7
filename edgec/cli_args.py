"""Command-line argument parsing shared by the `edgec` commands: input shapes and input files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec.errors import EdgecError


def parse_shapes(specs: list[str]) -> dict[str, list[int]]:
    shapes = {}
    for spec in specs:
        name, _, dims = spec.rpartition("=")
        try:
            if not name:
                raise ValueError
            shapes[name] = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            raise EdgecError(f"--input-shape {spec!r}: expected NAME=D0,D1,... (e.g. input=1,3,224,224)") from None
    return shapes


def load_input(spec: str, names: list[str]) -> tuple[str, np.ndarray]:
    name, sep, path = spec.partition("=")
    if not sep:
        if len(names) != 1:
            raise EdgecError(f"--input {spec!r}: name the input (NAME=FILE); the model's inputs are {names}")
        name, path = names[0], spec
    p = Path(path)
    if not p.is_file():
        raise EdgecError(f"input file not found: {p}")
    try:
        if p.suffix == ".npz":
            data = np.load(p)
            return name, data[data.files[0]]
        return name, np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise EdgecError(f"cannot read {p} as a .npy array: {exc}") from None
