"""The pass pipeline. `--dump-ir` prints the graph after every pass."""

from __future__ import annotations

from collections.abc import Callable

from edgec.ir import Graph, format_graph, verify
from edgec.optimize.passes import (
    dead_node_removal,
    fold_scale_into_conv,
    fuse_activation,
    fuse_bias,
    materialize_outputs,
)
from edgec.optimize.qdq import fold_qdq

Pass = Callable[[Graph], Graph]

DEFAULT_PASSES: list[tuple[str, Pass]] = [
    ("fold-qdq", fold_qdq),  # first: it looks up constants a converter copied (Gemm's B)
    ("dead-node-removal", dead_node_removal),
    ("fold-scale-into-conv", fold_scale_into_conv),
    ("fuse-bias", fuse_bias),
    ("fuse-activation", fuse_activation),
    ("materialize-outputs", materialize_outputs),
    ("dead-node-removal", dead_node_removal),
]


def run_pipeline(g: Graph, passes: list[tuple[str, Pass]] | None = None,
                 dump: Callable[[str], None] | None = None, dump_initial: bool = True) -> Graph:
    if dump and dump_initial:
        dump(f"== after import ==\n{format_graph(g)}")
    for name, fn in passes if passes is not None else DEFAULT_PASSES:
        g = fn(g)
        verify(g)
        if dump:
            dump(f"== after {name} ==\n{format_graph(g)}")
    return g
