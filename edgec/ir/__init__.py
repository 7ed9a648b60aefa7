"""The graph IR: values with static shapes, nodes in topological order, and a printer/verifier."""

from edgec.ir.graph import Graph, Node, Value
from edgec.ir.printer import format_graph
from edgec.ir.verify import verify

__all__ = ["Graph", "Node", "Value", "format_graph", "verify"]
