"""Regenerate the tiny ONNX fixtures of tests/core/test_ai_*.py (needs the ``train`` extra).

    .venv/bin/python tests/data/ai/make_fixtures.py
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent


def _conv_model(cin: int, cout: int, name: str) -> None:
    w = np.zeros((cout, cin, 1, 1), np.float32)
    for i in range(min(cin, cout)):
        w[i, i] = 1.0
    node = helper.make_node("Conv", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, "h", "w"])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(HERE / f"{name}.onnx"))


if __name__ == "__main__":
    _conv_model(3, 3, "identity_rgb")  # fits the contract (returns its input)
    _conv_model(1, 1, "gray_only")  # expects 1 channel: must be refused with a clear message
    _conv_model(3, 1, "rgb_to_gray")  # changes the channel count: refused
    (HERE / "garbage.onnx").write_bytes(b"this is not an ONNX protobuf\x00\x01\x02" * 4)
