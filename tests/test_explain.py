"""Tests for typedbackprop.explain: every printed shape is the shape of the real array."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import typedbackprop as tbp
from typedbackprop.explain import explain
from typedbackprop.explain.attention import attention_backward_rows
from typedbackprop.explain.text import Names
from typedbackprop.nn.activations import ACTIVATION_SPECS
from typedbackprop.nn.attention import Attention, attention_forward

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
        assert shapes_of(lines, f"b{number}[:, None]") == [layer.b[:, None].shape]
        grad_a = shapes_of(lines, f"grad_a{number - 1}")  # W.T @ delta: shaped like a_prev
        assert set(grad_a) == (set() if number == 1 else {cache.a_prev.shape})
    if loss == "squared_error":  # the gradient at the output, before BP1
        assert set(shapes_of(lines, f"grad_a{len(layers)}")) == {caches[-1].a.shape}


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


@pytest.mark.parametrize(
    ("options", "loss_line", "bp1_line"),
    [
        (
            ("sigmoid", "identity", "squared_error"),
            "L () = sum((a3 - y)**2) / 2 / batch",
            "delta3 (2, 5) = grad_a3 (2, 5) * identity'(z3) (2, 5)",
        ),
        (
            ("tanh", "sigmoid", "binary_cross_entropy"),
            "L () = sum(max(z3, 0) - z3 * y + log1p(exp(-|z3|))) / batch",
            "delta3 (2, 5) = (sigmoid(z3) - y) / batch",
        ),
        (
            ("relu", "softmax", "cross_entropy"),
            "L () = sum(logsumexp(z3, axis=0) - z3[labels, range(batch)]) / batch",
            "delta3 (2, 5) = (softmax(z3) - onehot(labels)) / batch",
        ),
    ],
)
def test_the_loss_and_bp1_lines_follow_the_loss(options, loss_line, bp1_line):
    lines = explain([3, 4, 4, 2], 5, *options)
    text = "\n".join(lines)
    assert loss_line in text and bp1_line in text
    bp1 = [line for line in lines if re.search(r"   BP1(?: from logits$|, einsum )", line)]
    assert len(bp1) == 1 and bp1_line in bp1[0]
    assert f"delta1 (4, 5) = grad_a1 (4, 5) * {options[0]}'(z1) (4, 5)" in text


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "identity"])
def test_each_activation_row_shows_its_specs_einsum(activation):
    """The note of an activation's backward row is its spec's einsum, as ``ACTIVATION_SPECS``
    says, the way the dense layer's rows show theirs."""
    lines = explain([3, 4, 4, 2], 5, activation, "softmax", "squared_error")
    spec = ACTIVATION_SPECS[activation]
    delta1 = next(line for line in lines if line.lstrip().startswith("delta1 "))
    assert delta1.endswith(f"BP2, einsum {spec.equation}: elementwise")
    delta3 = next(line for line in lines if line.lstrip().startswith("delta3 "))
    assert delta3.endswith(
        f"BP1, einsum {ACTIVATION_SPECS['softmax'].equation}: the softmax vector-Jacobian product"
    )


def test_any_sequence_of_layers_is_explained_by_its_families():
    from typedbackprop.explain import explain_network

    rng = np.random.default_rng(0)
    layers = [
        tbp.Dense(rng.normal(size=(4, 3)), rng.normal(size=4)),
        tbp.Activation("leaky_relu", slope=0.2),
        tbp.Dense(rng.normal(size=(2, 4)), rng.normal(size=2)),
        tbp.Activation("softmax"),
    ]
    lines = explain_network(
        layers, rng.normal(size=(3, 5)), np.array([0, 1, 1, 0, 1]), "cross_entropy"
    )
    text = "\n".join(lines)
    assert "a1 (4, 5) = leaky_relu(z1)" in text
    assert (
        "delta1 (4, 5) = grad_a1 (4, 5) * leaky_relu'(z1) (4, 5)   BP2, einsum fb,fb->fb: "
        "elementwise"
    ) in text
    assert "grad_W2 (2, 4) = delta2 (2, 5) @ a1.T (5, 4)" in text
    assert "(no grad_a0:" in text


def test_attentions_weight_rows_name_each_operand_with_its_shape():
    """One row per projection, each operand named: ``grad_q1 (...) · a0 (...)``, not a list of
    names followed by one shape."""
    rng = np.random.default_rng(0)
    heads, head_dim, features, seq, batch = 2, 3, 4, 5, 6
    layer = Attention(
        *(rng.normal(size=shape) for shape in [(heads, head_dim, features), (heads, head_dim)]),
        *(rng.normal(size=shape) for shape in [(heads, head_dim, features)] * 2),
        rng.normal(size=(heads, head_dim)),
        rng.normal(size=(features, heads, head_dim)),
        rng.normal(size=features),
    )
    _, cache = attention_forward(layer, rng.normal(size=(features, seq, batch)))
    names = Names(1, "a0", "a1", "grad_a0", "grad_a1", first=False)
    text = "\n".join(row for row, _ in attention_backward_rows(names, layer, cache))
    for name, long in [("q", "query"), ("k", "key"), ("v", "value")]:
        assert (
            f"grad_W_{long}1 (2, 3, 4) = grad_{name}1 (2, 6, 3, 5) · a0 (4, 5, 6), summed over "
            "tokens"
        ) in text


# --- every parameter's gradient, and a layout that fits the terminal ---------------------------

MODEL_INPUTS = {  # a batch of 3 in each model's input, and its labels
    "convnet": lambda rng: (rng.standard_normal((64, 3)), rng.integers(0, 10, 3), "cross_entropy"),
    "transformer": lambda rng: (
        rng.integers(0, 10, (15, 3)),
        rng.integers(0, 10, (8, 3)),
        "token_cross_entropy",
    ),
}


def model(name):
    """``(layers, lines)``: a recipe's model and what explain prints for it, unwrapped."""
    from typedbackprop.explain import explain_network
    from typedbackprop.recipes import RECIPES

    rng = np.random.default_rng(0)
    layers = RECIPES[name].build(rng)
    x, y, loss = MODEL_INPUTS[name](rng)
    return layers, x, y, loss, explain_network(layers, x, y, loss)


def gradient_shapes(lines, name):
    """The shapes printed for ``grad_<name>``, a slice's (``grad_pos2[:15]``) as the slice of
    what it stands for: ``[(slice_end or None, shape), ...]``."""
    pattern = re.compile(rf"^\s*grad_{re.escape(name)}(?:\[:(\d+)\])? {SHAPE} (?:=|\+=)")
    found = []
    for line in lines:
        if match := pattern.match(line):
            shape = tuple(int(part) for part in (match.group(2) or "").split(",") if part.strip())
            found.append((None if match.group(1) is None else int(match.group(1)), shape))
    return found


def expected_gradients(layers, transposed=False):
    """``{printed name: shape}`` for every parameter array of every layer, read from the
    records: ``grad_W3`` for field ``W`` of the third layer with parameters, ``grad_E1`` where
    the describer names the field otherwise."""
    from typedbackprop.explain import DESCRIBERS
    from typedbackprop.nn.families import parameters

    expected, number = {}, 0
    for layer in layers:
        arrays = parameters(layer)
        number += bool(arrays)
        for field, value in arrays.items():
            symbol = DESCRIBERS[type(layer)].parameters.get(field, field)
            expected[f"{symbol}{number}"] = value.T.shape if transposed else value.shape
    return expected


@pytest.mark.parametrize("name", ["convnet", "transformer"])
def test_every_parameter_of_every_model_has_its_gradient_line(name):
    layers, _, _, _, lines = model(name)
    expected = expected_gradients(layers)
    assert len(expected) == sum(len(tbp.nn.families.parameters(layer)) for layer in layers) > 9
    for printed, shape in expected.items():
        found = gradient_shapes(lines, printed)
        assert len(found) == 1, (printed, found)
        ((end, shown),) = found
        assert shown == (shape if end is None else (min(end, shape[0]), *shape[1:])), printed


@pytest.mark.parametrize("layout", ["features-first", "batch-first"])
def test_every_parameter_of_the_perceptron_has_its_gradient_line(layout):
    from typedbackprop.models import random_layers

    sizes = [3, 6, 5, 2]
    lines = explain(sizes, 4, "tanh", "softmax", "cross_entropy", layout)
    layers = random_layers(sizes, np.random.default_rng(0))  # what explain builds
    expected = expected_gradients(layers, transposed=layout == "batch-first")
    assert len(expected) == 6
    for printed, shape in expected.items():
        assert gradient_shapes(lines, printed) == [(None, shape)], printed


def test_the_transformer_shows_the_attention_biases_gradients():
    *_, lines = model("transformer")
    text = "\n".join(lines)
    assert "grad_b_query3 (4, 16) = grad_q3 (4, 3, 16, 15).sum(axis=(1, 3))" in text
    assert "grad_b_value3 (4, 16) = grad_v3 (4, 3, 16, 15).sum(axis=(1, 3))" in text
    assert "grad_b_output3 (64,) = grad_r3 (64, 15, 3).sum(axis=(1, 2))" in text
    assert "grad_b_key" not in text  # keys have no bias


def words(lines):
    """Every word of a printout, the ``#`` that marks a note under its equation left out."""
    return [word for line in lines for word in line.split() if word != "#"]


OUTPUTS = {
    "perceptron": lambda width: explain([3, 4, 4, 2], 5, width=width),
    "batch-first": lambda width: explain([3, 4, 4, 2], 5, layout="batch-first", width=width),
    "convnet": lambda width: tbp_explain_network(model("convnet"), width),
    "transformer": lambda width: tbp_explain_network(model("transformer"), width),
}


def tbp_explain_network(built, width):
    from typedbackprop.explain import explain_network

    layers, x, y, loss, _ = built
    return explain_network(layers, x, y, loss, width=width)


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("name", list(OUTPUTS))
def test_every_line_fits_the_width_and_says_the_same_words(name, width):
    unwrapped, wrapped = OUTPUTS[name](None), OUTPUTS[name](width)
    assert max(len(line) for line in unwrapped) > width  # there is something to wrap
    assert max(len(line) for line in wrapped) <= width
    assert words(wrapped) == words(unwrapped)
    for line in wrapped:  # a shape stays with its operand: no line opens with one
        assert not re.match(rf"\s*{SHAPE}(?!\S)", line) or line.lstrip().startswith("(no "), line


def test_a_table_that_fits_is_one_line_per_row_and_a_narrower_one_wraps_its_notes():
    from typedbackprop.explain import table

    rows = [("z1 (4, 5) = W1 (4, 3) @ a0 (3, 5)", "sum over inp; the bias broadcasts along batch")]
    rows += [("a1 (4, 5) = sigmoid(z1)", "elementwise")]
    one_line = table(rows, width=120)
    assert one_line == table(rows) and len(one_line) == 2
    beside = table(rows, width=70)  # the notes wrap in their column, beside the equations
    assert beside == [
        "  z1 (4, 5) = W1 (4, 3) @ a0 (3, 5)   sum over inp; the bias",
        "                                      broadcasts along batch",
        "  a1 (4, 5) = sigmoid(z1)             elementwise",
    ]
    under = table(rows, width=40)  # too narrow for a column: each note under its equation
    assert under == [
        "  z1 (4, 5) = W1 (4, 3) @ a0 (3, 5)",
        "      # sum over inp; the bias",
        "      # broadcasts along batch",
        "  a1 (4, 5) = sigmoid(z1)",
        "      # elementwise",
    ]


def test_a_long_equation_breaks_before_an_operator_never_inside_brackets_or_a_shape():
    from typedbackprop.explain.text import wrap

    equation = "grad_xa3 (64, 15, 3) = W_query3 (4, 16, 64) · grad_q3 (4, 3, 16, 15) + W_key3 (4, 16, 64) · grad_k3 (4, 3, 16, 15)"  # noqa: E501
    assert wrap(equation, 60, "  ", "      ") == [
        "  grad_xa3 (64, 15, 3) = W_query3 (4, 16, 64)",
        "      · grad_q3 (4, 3, 16, 15) + W_key3 (4, 16, 64)",
        "      · grad_k3 (4, 3, 16, 15)",
    ]


@pytest.mark.parametrize(
    ("command", "columns"),
    [
        (["--model", "transformer", "--batch", "3"], 100),
        (["--model", "convnet", "--batch", "3"], 100),
        (["3,4,4,2", "--batch", "5"], 100),
        (["3,4,4,2", "--batch", "5", "--layout", "batch-first"], 72),
        (["--model", "transformer", "--batch", "3"], 300),
    ],
)
def test_the_command_lays_out_for_the_columns_it_is_given(command, columns):
    import os
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-m", "typedbackprop", "explain", *command],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    if columns == 300:  # wide enough: one line per equation, each note beside it
        assert not any(line.lstrip().startswith("# ") for line in lines)
        assert any(
            re.search(r"grad_b_query3 \(4, 16\) = .*   sum over batch", line) for line in lines
        )
