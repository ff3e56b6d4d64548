"""The engine IR (Graph / Node / Value) and its verifier."""

from lanner.engine.ir.graph import Dim, Graph, Node, Shape, Value
from lanner.engine.ir.verify import InvalidGraphError, verify

__all__ = ["Dim", "Graph", "InvalidGraphError", "Node", "Shape", "Value", "verify"]
