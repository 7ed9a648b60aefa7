"""ONNX's backend node tests, run through edgec.onnx_backend.

Every node test whose ops are all supported by edgec's importer is included automatically;
the cases in expected_failures.py are expected to fail, each with the reason.
"""

from __future__ import annotations

import onnx.backend.test
from onnx.backend.test.loader import load_model_tests

from edgec.importer.registry import supported_ops
from edgec.onnx_backend import EdgecBackend
from tests.onnx_backend.expected_failures import EXPECTED_FAILURES


def _selected_tests() -> list[str]:
    supported = set(supported_ops()) | {"Constant", "Shape", "Size", "Range", "ConstantOfShape"}
    names = []
    for case in load_model_tests(kind="node"):
        model = onnx.load(case.model_dir + "/model.onnx") if case.model is None else case.model
        ops = {n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}
        if ops and ops <= supported and all(n.domain in ("", "ai.onnx") for n in model.graph.node):
            names.append(case.name)
    return names


backend_test = onnx.backend.test.BackendTest(EdgecBackend, __name__)
for _name in _selected_tests():
    if _name not in EXPECTED_FAILURES:
        backend_test.include(f"^{_name}_cpu$")
# A guard so the list of expected failures stays honest: they are run and must still fail.
for _name in EXPECTED_FAILURES:
    backend_test.xfail(f"^{_name}_cpu$")
    backend_test.include(f"^{_name}_cpu$")

globals().update(backend_test.enable_report().test_cases)
