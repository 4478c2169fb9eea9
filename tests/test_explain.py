"""Tests for typedbackprop.explain: every printed shape is the shape of the real array."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import typedbackprop as tbp
from typedbackprop.explain import explain

SHAPE = r"\((\d+(?:, \d+)*,?)?\)"


def shapes_of(lines, name):
    """Every shape printed right after the operand ``name`` (e.g. ``grad_W3 (2, 4)``)."""
    pattern = re.compile(rf"(?<![\w.]){re.escape(name)} {SHAPE}")
    found = []
    for line in lines:
        for match in pattern.finditer(line):
            text = match.group(1) or ""
            found.append(tuple(int(part) for part in text.split(",") if part.strip()))
    return found


def test_the_question_network_as_in_the_issue():
    lines = explain([3, 4, 4, 2], 5)
    text = "\n".join(lines)
    assert "grad_W3 (2, 4) = delta3 (2, 5) @ a2.T (5, 4)" in text
    assert "grad_a2 (4, 5) = W3.T (4, 2) @ delta3 (2, 5)" in text
    assert "z1 (4, 5) = W1 (4, 3) @ a0 (3, 5) + b1[:, None] (4, 1)" in text
    assert "grad_b1 (4,) = delta1.sum(axis=1)" in text
    assert "grad_a0" not in text.replace("no grad_a0", "")
    assert sum("BP4" in line for line in lines) == 3 and sum("BP2" in line for line in lines) == 2


@settings(deadline=None, max_examples=25)
@given(
    sizes=st.lists(st.integers(1, 7), min_size=2, max_size=5),
    batch=st.integers(1, 9),
    combination=st.sampled_from(
        [
            ("sigmoid", "identity", "squared_error"),
            ("relu", "softmax", "cross_entropy"),
            ("tanh", "sigmoid", "binary_cross_entropy"),
            ("leaky_relu", "softmax", "squared_error"),
        ]
    ),
)
def test_every_printed_shape_is_the_real_shape(sizes, batch, combination):
    activation, output, loss = combination
    lines = explain(sizes, batch, activation, output, loss)
    rng = np.random.default_rng(0)
    layers = [
        tbp.Dense(rng.normal(size=(n_out, n_in)), rng.normal(size=n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    x = rng.normal(size=(sizes[0], batch))
    y = (
        rng.integers(0, sizes[-1], batch)
        if loss == "cross_entropy"
        else rng.random((sizes[-1], batch))
    )
    caches = tbp.forward(layers, x, activation, output)
    _, grads = tbp.loss_and_grads(layers, x, y, activation, output, loss)
    for number, (layer, cache, grad) in enumerate(zip(layers, caches, grads, strict=True), start=1):
        assert set(shapes_of(lines, f"W{number}")) == {layer.W.shape}
        assert set(shapes_of(lines, f"W{number}.T")) <= {layer.W.T.shape}
        assert set(shapes_of(lines, f"z{number}")) == {cache.z.shape}
        assert set(shapes_of(lines, f"a{number}")) <= {cache.a.shape}
        assert set(shapes_of(lines, f"a{number - 1}")) <= {cache.a_prev.shape}
        assert set(shapes_of(lines, f"delta{number}")) == {cache.z.shape}
        assert shapes_of(lines, f"grad_W{number}") == [grad.W.shape]
        assert shapes_of(lines, f"grad_b{number}") == [grad.b.shape]
        assert set(shapes_of(lines, f"a{number - 1}.T")) == {cache.a_prev.T.shape}


@pytest.mark.parametrize(
    ("sizes", "batch", "names", "message"),
    [
        ([3], 5, ("sigmoid", "identity", "squared_error"), "at least two sizes"),
        ([3, 0], 5, ("sigmoid", "identity", "squared_error"), "at least two sizes"),
        ([3, 2], 0, ("sigmoid", "identity", "squared_error"), "at least two sizes"),
        ([3, 2], 5, ("sigmoid", "identity", "cross_entropy"), "use output_activation='softmax'"),
        ([3, 2], 5, ("swish", "identity", "squared_error"), "unknown activation"),
    ],
)
def test_bad_arguments(sizes, batch, names, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        explain(sizes, batch, *names)
