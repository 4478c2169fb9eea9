"""Tests for ``explain(..., layout="batch-first")``: every line is its features-first twin's
transpose, and the command line passes ``--layout`` through."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import typedbackprop as tbp
from typedbackprop.explain import explain

ROOT = Path(__file__).resolve().parent.parent
SHAPE = r"\((\d+(?:, \d+)*,?)?\)"
COMBINATIONS = [
    ("sigmoid", "identity", "squared_error"),
    ("relu", "softmax", "cross_entropy"),
    ("tanh", "sigmoid", "binary_cross_entropy"),
    ("leaky_relu", "softmax", "squared_error"),
]


def shapes_of(lines, name):
    """Every shape printed right after the operand ``name`` (e.g. ``grad_W3 (4, 2)``)."""
    pattern = re.compile(rf"(?<![\w.]){re.escape(name)} {SHAPE}")
    found = []
    for line in lines:
        for match in pattern.finditer(line):
            text = match.group(1) or ""
            found.append(tuple(int(part) for part in text.split(",") if part.strip()))
    return found


def test_the_question_network_in_both_layouts_as_in_the_issue():
    features_first = "\n".join(explain([3, 4, 4, 2], 5))
    batch_first = "\n".join(explain([3, 4, 4, 2], 5, layout="batch-first"))
    assert "grad_W3 (2, 4) = delta3 (2, 5) @ a2.T (5, 4)" in features_first
    assert "grad_W3 (4, 2) = a2.T (4, 5) @ delta3 (5, 2)" in batch_first
    assert "grad_a2 (5, 4) = delta3 (5, 2) @ W3.T (2, 4)" in batch_first
    assert "z1 (5, 4) = a0 (5, 3) @ W1 (3, 4) + b1 (4,)" in batch_first
    assert "grad_b1 (4,) = delta1.sum(axis=0)" in batch_first
    assert "einsum bo,bi->io" in batch_first and "einsum ob,ib->oi" in features_first
    assert "grad_a0" not in batch_first.replace("no grad_a0", "")


@settings(deadline=None, max_examples=20)
@given(
    sizes=st.lists(st.integers(1, 7), min_size=2, max_size=5),
    batch=st.integers(1, 9),
    combination=st.sampled_from(COMBINATIONS),
)
def test_every_batch_first_shape_is_the_transposed_features_first_shape(sizes, batch, combination):
    features_first = explain(sizes, batch, *combination)
    batch_first = explain(sizes, batch, *combination, layout="batch-first")
    assert len(batch_first) == len(features_first)
    count = len(sizes) - 1
    for number in range(count + 1):
        transposed = [
            f"W{number}",
            f"z{number}",
            f"a{number}",
            f"delta{number}",
            f"grad_W{number}",
            f"grad_a{number}",
            f"a{number}.T",
            f"W{number}.T",
        ]
        for name in transposed:
            theirs = shapes_of(features_first, name)
            ours = shapes_of(batch_first, name)
            assert ours == [shape[::-1] for shape in theirs], name
        # (out,) in both layouts; features first prints the broadcast column b[:, None] (out, 1)
        assert shapes_of(batch_first, f"grad_b{number}") == shapes_of(
            features_first, f"grad_b{number}"
        )
        assert shapes_of(batch_first, f"b{number}") == [
            shape[:1] for shape in shapes_of(features_first, f"b{number}[:, None]")
        ]


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_the_batch_first_functions_give_the_networks_gradients_transposed(combination):
    """The same backward pass as ``explain`` runs it, checked against ``loss_and_grads``."""
    activation, output, loss = combination
    rng = np.random.default_rng(5)
    sizes, batch = [3, 4, 6, 2], 5
    layers = [
        tbp.Dense(rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    x = rng.standard_normal((sizes[0], batch))
    y = rng.integers(0, 2, batch) if loss == "cross_entropy" else rng.random((sizes[-1], batch))
    _, expected = tbp.loss_and_grads(layers, x, y, activation, output, loss)
    caches = tbp.forward(layers, x, activation, output)
    entry = tbp.nn.LOSSES[loss]
    if entry.from_logits:
        delta = entry.function(caches[-1].z, y)[1].T  # batch first from here on
    else:
        grad_a = entry.function(caches[-1].a, y)[1]
        last = caches[-1]
        delta = tbp.nn.ACTIVATIONS[output].backward(grad_a, last.z, last.a, 0.01).T
    for number in range(len(layers) - 1, -1, -1):
        W, a_prev = layers[number].W.T, caches[number].a_prev.T
        grad_W, grad_b = tbp.nn.affine_grad_params_batch_first(delta, a_prev)
        assert_close(grad_W, expected[number].W.T)
        assert_close(grad_b, expected[number].b)
        if number:
            grad_a_prev = tbp.nn.affine_grad_input_batch_first(delta, W)
            below = caches[number - 1]
            delta = tbp.nn.ACTIVATIONS[activation].backward(grad_a_prev.T, below.z, below.a, 0.01).T


def test_an_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="unknown layout 'rows-first'"):
        explain([3, 2], 5, layout="rows-first")  # type: ignore[arg-type]


def test_the_command_line_passes_the_layout_through():
    result = subprocess.run(
        [sys.executable, "-m", "typedbackprop", "explain", "3,4,4,2", "--batch", "5"]
        + ["--layout", "batch-first"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"},
    )
    assert result.returncode == 0, result.stderr
    assert "grad_W3 (4, 2) = a2.T (4, 5) @ delta3 (5, 2)" in result.stdout
    assert "batch first: W_l is (inp, out)" in result.stdout


@pytest.mark.parametrize(
    ("loss", "output", "formula", "gradient"),
    [
        (
            "cross_entropy",
            "softmax",
            "L () = sum(logsumexp(z3, axis=1) - z3[range(batch), labels]) / batch",
            "delta3 (5, 2) = (softmax(z3, axis=1) - onehot(labels)) / batch",
        ),
        (
            "binary_cross_entropy",
            "sigmoid",
            "L () = " + tbp.nn.LOSSES["binary_cross_entropy"].formula.format(z="z3"),
            "delta3 (5, 2) = " + tbp.nn.LOSSES["binary_cross_entropy"].gradient.format(z="z3"),
        ),
        (
            "squared_error",
            "identity",
            "L () = " + tbp.nn.LOSSES["squared_error"].formula.format(a="a3"),
            "grad_a3 (5, 2) = " + tbp.nn.LOSSES["squared_error"].gradient.format(a="a3"),
        ),
    ],
)
def test_the_loss_lines_are_the_loss_table_s_with_the_class_axis_last(
    loss, output, formula, gradient
):
    text = "\n".join(explain([3, 4, 4, 2], 5, "sigmoid", output, loss, layout="batch-first"))
    assert formula in text and gradient in text
    if "axis" not in tbp.nn.LOSSES[loss].formula:  # a sum over every entry: the same both ways
        features_first = "\n".join(explain([3, 4, 4, 2], 5, "sigmoid", output, loss))
        assert formula in features_first


@pytest.mark.parametrize(
    ("output", "bp1"),
    [
        (
            "softmax",
            "delta3 (5, 2) = a3 * (grad_a3 - (a3 * grad_a3).sum(axis=1, keepdims=True))   BP1, "
            "the softmax vector-Jacobian product, along each row",
        ),
        ("tanh", "delta3 (5, 2) = grad_a3 (5, 2) * tanh'(z3) (5, 2)   BP1"),
    ],
)
def test_bp1_follows_how_the_output_activation_acts_on_a_row(output, bp1):
    lines = explain([3, 4, 4, 2], 5, "relu", output, "squared_error", layout="batch-first")
    assert bp1.split() in [line.split() for line in lines]
