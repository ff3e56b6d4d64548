"""L1: the engine (the TensorRT analog): ONNX → numpy IR → passes → backends.

Part 1 (this tree): IR + verifier, ONNX import with shape inference, the op table with numpy
reference kernels, the ``reference`` backend, op coverage, and the first passes.

Example:
    >>> from lanner.engine import load_onnx, optimize, get_backend
    >>> graph = optimize(load_onnx("model.onnx"))  # doctest: +SKIP
    >>> outputs = get_backend("reference").prepare(graph).run({"images": batch})  # doctest: +SKIP
"""

from lanner.engine.backends import get_backend
from lanner.engine.coverage import CoverageReport, check_coverage
from lanner.engine.ir import Graph, InvalidGraphError, Node, Value, verify
from lanner.engine.onnx_export import to_onnx
from lanner.engine.onnx_import import import_model, load_onnx
from lanner.engine.passes import PASSES, optimize, summarize_layers
from lanner.engine.shape_inference import infer_shapes

__all__ = [
    "PASSES",
    "CoverageReport",
    "Graph",
    "InvalidGraphError",
    "Node",
    "Value",
    "check_coverage",
    "get_backend",
    "import_model",
    "infer_shapes",
    "load_onnx",
    "optimize",
    "summarize_layers",
    "to_onnx",
    "verify",
]

# -- part 2: cpu backend, tactics + timing cache, plan file, runtime (appended) ---------------------------
from lanner.engine.build import BuildConfig, build_engine
from lanner.engine.plan import Plan, PlanMismatchError, Profile, read_plan, write_plan
from lanner.engine.runtime import Engine, TensorSpec
from lanner.engine.timing_cache import TimingCache, TimingCacheMissError

__all__ += [
    "BuildConfig",
    "Engine",
    "Plan",
    "PlanMismatchError",
    "Profile",
    "TensorSpec",
    "TimingCache",
    "TimingCacheMissError",
    "build_engine",
    "read_plan",
    "write_plan",
]
