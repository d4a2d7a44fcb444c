"""converters.quantize.fold_affine: the int8 pre-pass that folds per-channel Add/Mul chains into the
Conv / MatMul before them and moves a Relu next to its Conv, on a hand-built tf2onnx-style graph."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from converters.quantize import fold_affine

LENGTH = 20


def _graph(extra_conv_consumer: bool = False, along_time: bool = False) -> onnx.ModelProto:
    """Conv -> Squeeze -> Add -> Mul -> Add -> Relu -> ReduceMean -> MatMul -> Add -> Mul -> Add."""
    rng = np.random.default_rng(0)
    shift_shape = (1, 1, LENGTH) if along_time else (1, 4, 1)
    consts = {"w": rng.normal(size=(4, 1, 1, 3)), "axes": np.array([2]), "b": rng.normal(size=(1, 4, 1)),
              "s": rng.uniform(0.5, 2, (1, 4, 1)), "t": rng.normal(size=shift_shape),
              "wd": rng.normal(size=(4, 3)), "bd": rng.normal(size=3), "sd": rng.uniform(0.5, 2, 3),
              "td": rng.normal(size=(1, 3))}
    inits = [numpy_helper.from_array(v.astype(np.int64 if k == "axes" else np.float32), k)
             for k, v in consts.items()]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[0, 1, 0, 1]),
             helper.make_node("Squeeze", ["c", "axes"], ["sq"], name="squeeze"),
             helper.make_node("Add", ["sq", "b"], ["a1"], name="bias"),
             helper.make_node("Mul", ["a1", "s"], ["m1"], name="bn_mul"),
             helper.make_node("Add", ["m1", "t"], ["a2"], name="bn_add"),
             helper.make_node("Relu", ["a2"], ["r"], name="relu"),
             helper.make_node("ReduceMean", ["r"], ["pool"], name="pool", axes=[2], keepdims=0),
             helper.make_node("MatMul", ["pool", "wd"], ["d"], name="dense"),
             helper.make_node("Add", ["d", "bd"], ["d1"], name="dense_bias"),
             helper.make_node("Mul", ["d1", "sd"], ["d2"], name="dense_bn_mul"),
             helper.make_node("Add", ["d2", "td"], ["y"], name="dense_bn_add")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])]
    if extra_conv_consumer:
        outputs.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, ["n", 4, 1, LENGTH]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         ["n", 1, 1, LENGTH])], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


def _ops(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


def test_chains_fold_into_their_layers_with_the_same_outputs() -> None:
    model = _graph()
    folded = fold_affine(model)
    onnx.checker.check_model(folded, full_check=True)
    assert _ops(folded) == ["Conv", "Relu", "Squeeze", "ReduceMean", "MatMul", "Add"]
    x = np.random.default_rng(1).normal(size=(8, 1, 1, LENGTH)).astype(np.float32)
    np.testing.assert_allclose(_run(folded, x), _run(model, x), atol=1e-5, rtol=1e-5)
    assert _ops(model)[:3] == ["Conv", "Squeeze", "Add"]  # the source model is left alone


@pytest.mark.parametrize("kwargs, kept", [
    # A shift along time is no per-channel affine: the fold stops there (bias and scale are folded).
    ({"along_time": True}, ["Conv", "Squeeze", "Add", "Relu", "ReduceMean", "MatMul", "Add"]),
    # The Conv output is also a graph output: its chain and its Relu stay; the dense chain folds.
    ({"extra_conv_consumer": True}, ["Conv", "Squeeze", "Add", "Mul", "Add", "Relu", "ReduceMean", "MatMul", "Add"]),
])
def test_what_is_not_a_per_channel_chain_stays(kwargs: dict, kept: list[str]) -> None:
    model = _graph(**kwargs)
    folded = fold_affine(model)
    x = np.random.default_rng(2).normal(size=(4, 1, 1, LENGTH)).astype(np.float32)
    np.testing.assert_allclose(_run(folded, x), _run(model, x), atol=1e-5, rtol=1e-5)
    assert _ops(folded) == kept


@pytest.mark.parametrize("passing_from, convs, expected, tried", [
    (1, 14, 1, [1]),                      # the first convolution alone suffices: one try
    (6, 14, 6, [1, 7, 4, 5, 6]),          # bisection lands on the fewest that pass
    (14, 14, 14, [1, 7, 10, 12, 13, 14]),  # only all of them: the last one is tried too
    (None, 14, 14, [1, 7, 10, 12, 13, 14]),  # none passes: every convolution float32, tried
    (None, 1, 1, [1]),
])
def test_shortest_float_prefix_bisects_to_the_fewest_passing(passing_from, convs, expected, tried):
    from converters.quantize import shortest_float_prefix

    calls: list[int] = []

    def agreement(n: int) -> float:
        calls.append(n)
        return 0.995 if passing_from is not None and n >= passing_from else 0.97

    assert shortest_float_prefix(convs, agreement, 0.99) == expected
    assert calls == tried
