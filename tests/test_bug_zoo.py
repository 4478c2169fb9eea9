"""The bug zoo: which defence catches each classic backprop mistake, and that the fix passes it.

Each wrong function lives in ``tests/bug_zoo.py`` (or ``tests/bug_zoo_mypy.py`` for the type
errors); ``docs/bug-zoo.md`` shows the same functions. Four defences, tested in this order:

- the runtime shape check: the call raises ``jaxtyping.TypeCheckError`` whose message names the
  dimensions and the sizes bound to them;
- mypy: ``mypy --strict`` reports the line;
- the gradient check: ``typedbackprop.gradcheck`` raises ``GradcheckError``;
- only an oracle: shapes and gradient check pass, and only a comparison with PyTorch (or with
  the original function) shows the value is wrong.

Every test also runs the correct function through the same defence, so it would fail if the
defence caught everything.
"""

import ast
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import bug_zoo as zoo
import bug_zoo_mypy
import numpy as np
import pytest
import torch
from doc_outputs import ROOT, check_output
from helpers import assert_close
from jaxtyping import TypeCheckError

import typedbackprop as tbp
from typedbackprop import Array, GradcheckError
from typedbackprop.cli import check_shapes
from typedbackprop.nn.attention import (
    attention_scores,
    attention_weights,
    scaled_dot_product_attention_backward,
    weighted_values,
)

Case = dict[str, Any]


def normal(rng: np.random.Generator, *shape: int) -> Array:
    return rng.normal(size=shape)


def shape_check_message(call: Callable[[], object]) -> str:
    with pytest.raises(TypeCheckError) as error:
        call()
    return str(error.value)


# --- By name, before anything runs: typedbackprop check-shapes ---------------------------------
# Every zoo function declares its dimensions as its original does, so Pyrefly checks it by name.

STATIC_CATCHES = {
    # zoo function: the shapes Pyrefly's finding names
    "affine_grad_params_no_transpose": "`ndarray[[out, batch]]` and `ndarray[[inp, batch]]`",
    "affine_grad_params_swapped_order": "`tuple[ndarray[[inp, out]], ndarray[[out]]]`",
    "affine_grad_input_no_transpose": "`ndarray[[out, inp]]` and `ndarray[[out, batch]]`",
    "affine_grad_input_upstream_first": "`ndarray[[batch, inp]]`",
    "affine_grad_params_bias_wrong_axis": "`tuple[ndarray[[out, inp]], ndarray[[batch]]]`",
    "affine_forward_bias_wrong_axis": "`ndarray[[out, batch]]` and `ndarray[[out]]`",
    "affine_backward_bias_wrong_axis": "ndarray[[batch]], ndarray[[inp, batch]]]`",
    "attention_scores_queries_first": "`ndarray[[heads, batch, query, key]]`",
}
"""The zoo's mistakes that ``check-shapes`` flags, each inside its own function."""

ZOO_TABLE_ROWS = [
    "affine_grad_params_no_transpose",
    "affine_grad_params_swapped_order",
    "affine_grad_input_no_transpose",
    "affine_grad_input_upstream_first",
    "affine_grad_params_bias_wrong_axis",
    "affine_forward_bias_wrong_axis",
    "affine_backward_bias_wrong_axis",
    "sigmoid_backward_at_a",
    "softmax_backward_diagonal",
    "squared_error_without_mean",
    "softmax_forward_unstable",
    "binary_cross_entropy_with_epsilon",
    "sigmoid_backward_in_place",
    "relu_backward_float64",
    "attention_scores_queries_first",
    "attention_mask_after_softmax",
    "attention_scores_unscaled",
    "three gradients from a two-gradient function (bug_zoo_mypy)",
    "the loss's tuple used as a gradient (bug_zoo_mypy)",
    "maxpool2d_backward_assign",
    "batchnorm_grad_input_no_variance_term",
    "dropout_backward_unscaled",
    "rnn_backward_assign",
    "rnn_backward_no_carry",
    "lstm_cell_backward_forget_with_c_new",
    "gru_cell_backward_z_swapped",
    "clipped_step_after_the_update",
]
"""The zoo entry of each row of docs/bug-zoo.md's table, in the table's order."""


@pytest.fixture(scope="module")
def zoo_static_findings() -> dict[str, list[str]]:
    """Pyrefly's shape findings in tests/bug_zoo.py, by the zoo function they fall in."""
    path = ROOT / "tests" / "bug_zoo.py"
    findings = check_shapes.check_shapes([path], check_shapes.ensure_stubs())
    tree = ast.parse(path.read_text(encoding="utf-8"))
    spans = {
        node.name: (min([node.lineno, *(d.lineno for d in node.decorator_list)]), node.end_lineno)
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }
    found: dict[str, list[str]] = {}
    for finding in findings:
        if not finding.about_shapes:
            continue  # the shape stubs' typing of float(np.vdot(...)), not a shape
        name = next(n for n, (a, b) in spans.items() if b is not None and a <= finding.line <= b)
        found.setdefault(name, []).append(finding.message)
    return found


def test_check_shapes_flags_exactly_the_mistakes_of_names(zoo_static_findings):
    assert sorted(zoo_static_findings) == sorted(STATIC_CATCHES)
    for name, fragment in STATIC_CATCHES.items():
        assert any(fragment in message for message in zoo_static_findings[name]), name


def test_the_static_catches_include_mistakes_that_run_silently(rng):
    # inp == batch: the question's grad_z @ a_prev runs and returns W's shape, wrongly summed.
    grad_z, a_prev = normal(rng, 2, 4), normal(rng, 4, 4)
    grad_W, _ = zoo.affine_grad_params_no_transpose(grad_z, a_prev)
    assert grad_W.shape == (2, 4)
    assert not np.allclose(grad_W, grad_z @ a_prev.T)
    # query == key: self-attention's Qᵀ K has the shape of Kᵀ Q, and the wrong values.
    q, k = normal(rng, 2, 3, 4, 5), normal(rng, 2, 3, 4, 5)
    scores = zoo.attention_scores_queries_first(q, k)
    assert not np.allclose(scores, attention_scores(q, k))


def test_the_tables_static_column_is_check_shapes(zoo_static_findings):
    table = (ROOT / "docs" / "bug-zoo.md").read_text("utf-8").split("| bug | what goes wrong |")[1]
    rows = [row for row in table.split("\n\n")[0].splitlines() if row.startswith("| [")]
    assert len(rows) == len(ZOO_TABLE_ROWS)
    for row, name in zip(rows, ZOO_TABLE_ROWS, strict=True):
        earliest = [cell.strip() for cell in row.strip("|").split(" | ")][2]
        assert (earliest == "**by name**") == (name in zoo_static_findings), (name, earliest)


# --- The runtime shape check -------------------------------------------------------------------
# The question's last layer: out = 2, inp = 4, batch = 5 (W3 is (2, 4), a2 is (4, 5)).

SHAPE_CASES = {
    "grad_W_swapped_order": (
        zoo.affine_grad_params_swapped_order,
        tbp.nn.affine_grad_params,
        [(2, 5), (4, 5)],
        ["return value", "Float[ndarray, 'out inp']", "out=2", "inp=4", "batch=5"],
    ),
    "grad_input_upstream_first": (
        zoo.affine_grad_input_upstream_first,
        tbp.nn.affine_grad_input,
        [(2, 5), (2, 4)],
        ["return value", "Float[ndarray, 'inp batch']", "inp=4", "batch=5"],
    ),
    "grad_b_wrong_axis": (
        zoo.affine_grad_params_bias_wrong_axis,
        tbp.nn.affine_grad_params,
        [(2, 5), (4, 5)],
        ["return value", "Float[ndarray, 'out']", "out=2", "batch=5"],
    ),
    # heads=2, batch=3, head_dim=4, query=5, key=6: Qᵀ K is (5, 6), "query key".
    "attention_scores_queries_first": (
        zoo.attention_scores_queries_first,
        attention_scores,
        [(2, 3, 4, 5), (2, 3, 4, 6)],
        ["return value", "Float[ndarray, 'heads batch key query']", "query=5", "key=6"],
    ),
}


@pytest.mark.parametrize("name", SHAPE_CASES)
def test_the_shape_check_catches_it_and_names_the_dimensions(name, rng):
    wrong, right, shapes, fragments = SHAPE_CASES[name]
    arrays = [normal(rng, *shape) for shape in shapes]
    message = shape_check_message(lambda: wrong(*arrays))
    for fragment in fragments:
        assert fragment in message
    right(*arrays)  # the original, same arrays: passes the check


def test_the_shape_check_is_blind_where_the_sizes_coincide(rng):
    # With out == inp the swapped product has W's shape: only the gradient check sees it.
    grad_z, a_prev, W = normal(rng, 4, 5), normal(rng, 4, 5), normal(rng, 4, 4)
    grad_W, _ = zoo.affine_grad_params_swapped_order(grad_z, a_prev)
    assert grad_W.shape == W.shape
    with pytest.raises(GradcheckError):
        tbp.gradcheck(
            tbp.nn.affine_forward,
            lambda g, W, b, a: (*zoo.affine_grad_params_swapped_order(g, a), W.T @ g),
            [W, normal(rng, 4), a_prev],
        )


# --- mypy --------------------------------------------------------------------------------------


def mypy(*paths: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout


def line_containing(path: str, text: str) -> int:
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    (number,) = [n for n, line in enumerate(lines, start=1) if text in line]
    return number


def test_mypy_reports_exactly_the_type_errors_and_nothing_in_their_fixes():
    path = "tests/bug_zoo_mypy.py"
    output = mypy(path)
    reported = {
        (int(line.split(":")[1]), line.rsplit("[", 1)[1].rstrip("]"))
        for line in output.splitlines()
        if ": error:" in line
    }
    assert reported == {
        (line_containing(path, "# BUG: it returns two"), "misc"),
        (line_containing(path, "# mypy reports the tuple where it is used"), "arg-type"),
    }, output
    check_output("mypy_bug_zoo.txt", f"$ mypy --strict {path}\n{output}")


def test_mypy_sees_none_of_the_shape_bugs():
    # Array is NDArray[np.floating[Any]]: to mypy every array has every shape and every dtype.
    assert mypy("tests/bug_zoo.py") == ""


def test_the_type_errors_also_fail_when_they_run(rng):
    delta, a_prev = normal(rng, 2, 5), normal(rng, 4, 5)
    with pytest.raises(ValueError, match="not enough values to unpack"):
        bug_zoo_mypy.output_layer_grads(delta, a_prev)
    assert bug_zoo_mypy.output_layer_grads_fixed(delta, a_prev)[0].shape == (2, 4)
    z = normal(rng, 2, 5)
    a, y = tbp.nn.sigmoid_forward(z), normal(rng, 2, 5)
    with pytest.raises(TypeCheckError, match="grad_a"):
        bug_zoo_mypy.output_delta(a, z, y)
    assert bug_zoo_mypy.output_delta_fixed(a, z, y).shape == (2, 5)


# --- The gradient check ------------------------------------------------------------------------


def affine_backward_in_forward_order(
    grad_params: Callable[[Array, Array], tuple[Array, Array]],
    grad_input: Callable[[Array, Array], Array],
) -> Callable[[Array, Array, Array, Array], tuple[Array, Array, Array]]:
    """A backward for ``gradcheck``: gradients in the order of affine_forward's (W, b, a_prev)."""

    def backward(grad_z: Array, W: Array, b: Array, a_prev: Array) -> tuple[Array, Array, Array]:
        grad_W, grad_b = grad_params(grad_z, a_prev)
        return grad_W, grad_b, grad_input(grad_z, W)

    return backward


def activation_backward(
    backward: Callable[[Array, Array, Array], Array], forward: Callable[[Array], Array]
) -> Callable[[Array, Array], Array]:
    """A backward for ``gradcheck``: the activation's backward, given ``a = forward(z)``."""
    return lambda grad_a, z: backward(grad_a, z, forward(z))


def gradcheck_cases(rng: np.random.Generator) -> dict[str, Case]:
    correct_affine = affine_backward_in_forward_order(
        tbp.nn.affine_grad_params, tbp.nn.affine_grad_input
    )
    y = normal(rng, 2, 5)
    z_cached = normal(rng, 3, 5)
    cache_of_wrong = tbp.nn.sigmoid_forward(z_cached)  # one forward pass; backward reuses its cache
    cache_of_right = tbp.nn.sigmoid_forward(z_cached)
    q, k, v = normal(rng, 2, 3, 4, 5), normal(rng, 2, 3, 4, 5), normal(rng, 2, 3, 4, 5)

    def attention_with(scores: Callable[[Array, Array], Array]) -> Callable[..., Array]:
        return lambda q, k, v: weighted_values(v, attention_weights(scores(q, k)))

    def attention_backward_of(forward_weights: Callable[..., Array]) -> Callable[..., Any]:
        """The package's backward, given the weights a forward pass computed."""
        return lambda grad, q, k, v: scaled_dot_product_attention_backward(
            grad, q, k, v, forward_weights(q, k, v)
        )

    def right_weights(q: Array, k: Array, v: Array) -> Array:
        return attention_weights(attention_scores(q, k))

    def causal(q: Array, k: Array, v: Array) -> Array:
        return tbp.nn.scaled_dot_product_attention(q, k, v, causal=True)[0]

    return {
        # query == key == 5, as in self-attention: Qᵀ K has the shape of Kᵀ Q.
        "attention_scores_queries_first": {
            "forward": attention_with(zoo.attention_scores_queries_first),
            "right_forward": attention_with(attention_scores),
            "wrong": attention_backward_of(
                lambda q, k, v: attention_weights(zoo.attention_scores_queries_first(q, k))
            ),
            "right": attention_backward_of(right_weights),
            "inputs": [q, k, v],
        },
        "attention_mask_after_softmax": {
            "forward": lambda q, k, v: zoo.attention_mask_after_softmax(q, k, v)[0],
            "right_forward": causal,
            "wrong": attention_backward_of(
                lambda q, k, v: zoo.attention_mask_after_softmax(q, k, v)[1]
            ),
            "right": attention_backward_of(
                lambda q, k, v: tbp.nn.scaled_dot_product_attention(q, k, v, causal=True)[1]
            ),
            "inputs": [q, k, v],
        },
        # inp == batch == 5: numpy multiplies without complaint and the shapes come out right.
        "grad_W_no_transpose": {
            "forward": tbp.nn.affine_forward,
            "wrong": affine_backward_in_forward_order(
                zoo.affine_grad_params_no_transpose, tbp.nn.affine_grad_input
            ),
            "right": correct_affine,
            "inputs": [normal(rng, 2, 5), normal(rng, 2), normal(rng, 5, 5)],
        },
        # inp == out == 4, like W2 of the question's network.
        "grad_input_no_transpose": {
            "forward": tbp.nn.affine_forward,
            "wrong": affine_backward_in_forward_order(
                tbp.nn.affine_grad_params, zoo.affine_grad_input_no_transpose
            ),
            "right": correct_affine,
            "inputs": [normal(rng, 4, 4), normal(rng, 4), normal(rng, 4, 5)],
        },
        # out == batch == 5: the bias gradient summed over out has the shape of one over batch.
        "grad_b_wrong_axis": {
            "forward": tbp.nn.affine_forward,
            "wrong": affine_backward_in_forward_order(
                zoo.affine_grad_params_bias_wrong_axis, tbp.nn.affine_grad_input
            ),
            "right": correct_affine,
            "inputs": [normal(rng, 5, 3), normal(rng, 5), normal(rng, 3, 5)],
        },
        # out == batch == 5: the wrong forward runs; the (correct) backward disagrees with it.
        "forward_bias_wrong_axis": {
            "forward": zoo.affine_forward_bias_wrong_axis,
            "right_forward": tbp.nn.affine_forward,
            "wrong": correct_affine,
            "right": correct_affine,
            "inputs": [normal(rng, 5, 3), normal(rng, 5), normal(rng, 3, 5)],
        },
        "sigmoid_prime_at_a": {
            "forward": tbp.nn.sigmoid_forward,
            "wrong": activation_backward(zoo.sigmoid_backward_at_a, tbp.nn.sigmoid_forward),
            "right": activation_backward(tbp.nn.sigmoid_backward, tbp.nn.sigmoid_forward),
            "inputs": [normal(rng, 3, 5)],
        },
        "softmax_backward_diagonal": {
            "forward": tbp.nn.softmax_forward,
            "wrong": activation_backward(zoo.softmax_backward_diagonal, tbp.nn.softmax_forward),
            "right": activation_backward(tbp.nn.softmax_backward, tbp.nn.softmax_forward),
            "inputs": [normal(rng, 3, 5)],
        },
        "squared_error_without_mean": {
            "forward": lambda a: tbp.nn.squared_error(a, y)[0],
            "wrong": lambda grad, a: grad * zoo.squared_error_without_mean(a, y)[1],
            "right": lambda grad, a: grad * tbp.nn.squared_error(a, y)[1],
            "inputs": [normal(rng, 2, 5)],
        },
        # The backward runs once per row of the Jacobian, on the cache of one forward pass.
        "sigmoid_backward_in_place": {
            "forward": tbp.nn.sigmoid_forward,
            "wrong": lambda grad_a, z: zoo.sigmoid_backward_in_place(grad_a, z, cache_of_wrong),
            "right": lambda grad_a, z: tbp.nn.sigmoid_backward(grad_a, z, cache_of_right),
            "inputs": [z_cached],
        },
    }


GRADCHECK_CASES = [
    "attention_scores_queries_first",
    "attention_mask_after_softmax",
    "grad_W_no_transpose",
    "grad_input_no_transpose",
    "grad_b_wrong_axis",
    "forward_bias_wrong_axis",
    "sigmoid_prime_at_a",
    "softmax_backward_diagonal",
    "squared_error_without_mean",
    "sigmoid_backward_in_place",
]


@pytest.mark.parametrize("name", GRADCHECK_CASES)
def test_the_gradient_check_catches_it_and_passes_the_fix(name, rng):
    case = gradcheck_cases(rng)[name]
    inputs = case["inputs"]
    with pytest.raises(GradcheckError):
        tbp.gradcheck(case["forward"], case["wrong"], inputs)  # shapes pass: no TypeCheckError
    right_forward = case.get("right_forward", case["forward"])
    assert tbp.gradcheck(right_forward, case["right"], inputs).passed


def test_numpy_itself_refuses_the_missing_transposes_when_the_sizes_differ(rng):
    grad_z, a_prev, W = normal(rng, 2, 5), normal(rng, 4, 5), normal(rng, 2, 4)
    with pytest.raises(ValueError, match="matmul") as error:
        zoo.affine_grad_params_no_transpose(grad_z, a_prev)
    assert (
        error.value.__notes__[0]
        .splitlines()[-1]
        .startswith("the product met batch=5 (the left factor's last axis) with inp=4")
    )
    with pytest.raises(ValueError, match="matmul") as error:
        zoo.affine_grad_input_no_transpose(grad_z, W)
    assert (
        error.value.__notes__[0]
        .splitlines()[-1]
        .startswith("the product met inp=4 (the left factor's last axis) with out=2")
    )
    with pytest.raises(ValueError, match="broadcast") as error:
        zoo.affine_forward_bias_wrong_axis(W, normal(rng, 2), a_prev)
    assert error.value.__notes__[0].splitlines()[-1] == (
        "broadcasting lines up trailing axes: (out=2, batch=5) and (out=2) put batch=5 "
        "against out=2"
    )


def test_the_in_place_backward_corrupts_the_cache_and_gradcheck_says_so(rng):
    z = normal(rng, 3, 5)
    a = tbp.nn.sigmoid_forward(z)
    first = zoo.sigmoid_backward_in_place(np.ones_like(z), z, a)
    np.testing.assert_allclose(
        first, tbp.nn.sigmoid_backward(np.ones_like(z), z, tbp.nn.sigmoid_forward(z))
    )
    assert not np.allclose(
        a, tbp.nn.sigmoid_forward(z)
    )  # the first call was right, the cache is not
    report = tbp.gradcheck(
        tbp.nn.sigmoid_forward,
        lambda grad_a, z: zoo.sigmoid_backward_in_place(grad_a, z, tbp.nn.sigmoid_forward(z)),
        [z],
    )
    assert report.passed  # with a fresh cache on every call the bug is invisible
    frozen = tbp.nn.sigmoid_forward(z)
    frozen.flags.writeable = False  # what a read-only input test does: it fails at the write
    with pytest.raises(ValueError, match="read-only"):
        zoo.sigmoid_backward_in_place(np.ones_like(z), z, frozen)
    tbp.nn.sigmoid_backward(np.ones_like(z), z, frozen)


def test_the_epsilon_in_the_loss_fails_the_tight_check_but_not_torchs_tolerances():
    z = np.array([[4.0, -3.0, 0.5, 6.0, -5.0], [-2.0, 3.5, -6.5, 1.0, 5.0]])
    y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0, 0.0]])

    def forward(z: Array) -> float:
        return zoo.binary_cross_entropy_with_epsilon(z, y)[0]

    def wrong(grad: float, z: Array) -> Array:
        return grad * zoo.binary_cross_entropy_with_epsilon(z, y)[1]

    with pytest.raises(GradcheckError):
        tbp.gradcheck(forward, wrong, [z])  # rtol 1e-7: the ε shows
    assert tbp.gradcheck(forward, wrong, [z], rtol=1e-3, atol=1e-5).passed  # torch's defaults
    assert tbp.gradcheck(
        lambda z: tbp.nn.binary_cross_entropy(z, y)[0],
        lambda grad, z: grad * tbp.nn.binary_cross_entropy(z, y)[1],
        [z],
    ).passed


# --- Only an oracle ----------------------------------------------------------------------------


def torch_linear(W: Array, b: Array, a_prev: Array) -> Array:
    # torch is batch first: (batch, inp) -> (batch, out). Transposes at the boundary only.
    z = torch.nn.functional.linear(
        torch.from_numpy(a_prev.T), torch.from_numpy(W), torch.from_numpy(b)
    )
    return z.numpy().T


def test_a_consistent_wrong_bias_pair_passes_every_check_but_the_oracle(rng):
    W, b, a_prev = normal(rng, 5, 3), normal(rng, 5), normal(rng, 3, 5)  # out == batch == 5
    z = zoo.affine_forward_bias_wrong_axis(W, b, a_prev)  # shapes pass
    report = tbp.gradcheck(
        zoo.affine_forward_bias_wrong_axis,
        lambda grad_z, W, b, a_prev: zoo.affine_backward_bias_wrong_axis(grad_z, W, a_prev),
        [W, b, a_prev],
    )
    assert (
        report.passed
    )  # the pair is self-consistent: a different function, rightly differentiated
    assert not np.allclose(z, torch_linear(W, b, a_prev))
    right = tbp.nn.affine_forward(W, b, a_prev)
    np.testing.assert_allclose(right, torch_linear(W, b, a_prev), rtol=1e-12)


def test_the_unstable_softmax_passes_the_checks_and_fails_on_large_logits(rng):
    z = normal(rng, 3, 5)
    assert tbp.gradcheck(
        zoo.softmax_forward_unstable,
        lambda grad_a, z: tbp.nn.softmax_backward(grad_a, z, zoo.softmax_forward_unstable(z)),
        [z],
    ).passed
    large = z + 1000.0
    expected = torch.softmax(torch.from_numpy(large), dim=0).numpy()
    with pytest.warns(RuntimeWarning, match="overflow"):
        with np.errstate(invalid="ignore"):
            wrong = zoo.softmax_forward_unstable(large)
    assert np.isnan(wrong).all()
    np.testing.assert_allclose(tbp.nn.softmax_forward(large), expected, rtol=1e-12)


def test_the_epsilon_in_the_loss_caps_it_on_confident_mistakes():
    z = np.array([[40.0, -40.0]])
    y = np.array([[0.0, 1.0]])  # both examples confidently wrong
    expected = (
        torch.nn.functional.binary_cross_entropy_with_logits(
            torch.from_numpy(z), torch.from_numpy(y)
        ).item()
        * z.size
        / z.shape[1]
    )
    wrong, _ = zoo.binary_cross_entropy_with_epsilon(z, y)
    right, _ = tbp.nn.binary_cross_entropy(z, y)
    assert wrong == pytest.approx(-np.log(zoo.EPSILON), rel=1e-3)  # 18.4 instead of 40
    assert right == pytest.approx(expected, rel=1e-12) and right == pytest.approx(40.0)


def test_float64_sneaks_into_a_float32_run_and_only_a_dtype_test_sees_it(rng):
    z = normal(rng, 3, 5).astype(np.float32)
    grad_a = normal(rng, 3, 5).astype(np.float32)
    a = tbp.nn.relu_forward(z)
    wrong = zoo.relu_backward_float64(grad_a, z, a)  # shapes pass: Float accepts any float dtype
    right = tbp.nn.relu_backward(grad_a, z, a)
    np.testing.assert_array_equal(wrong, right)  # the same numbers...
    z64 = z.astype(np.float64)
    assert tbp.gradcheck(
        tbp.nn.relu_forward,
        lambda g, z: zoo.relu_backward_float64(g, z, tbp.nn.relu_forward(z)),
        [z64],
    ).passed  # ...and a float64 gradient check cannot tell
    z_torch = torch.from_numpy(z).requires_grad_()
    torch.relu(z_torch).backward(torch.from_numpy(grad_a))
    expected = z_torch.grad.numpy()
    np.testing.assert_array_equal(right, expected)
    assert right.dtype == expected.dtype == np.float32
    assert wrong.dtype == np.float64


def test_a_float64_bias_in_a_float32_network_is_refused_by_the_network(rng):
    x = normal(rng, 3, 5).astype(np.float32)
    y = normal(rng, 2, 5).astype(np.float32)
    W = normal(rng, 2, 3).astype(np.float32)
    with pytest.raises(TypeError, match="dtypes differ: x is float32 but layer 0 has W float32"):
        tbp.loss_and_grads([tbp.Dense(W, np.zeros(2))], x, y)  # np.zeros defaults to float64
    loss, grads = tbp.loss_and_grads([tbp.Dense(W, np.zeros(2, dtype=np.float32))], x, y)
    assert grads[0].W.dtype == grads[0].b.dtype == np.float32


def test_the_mask_after_the_softmax_leaves_columns_that_do_not_sum_to_one(rng):
    q, k, v = normal(rng, 2, 3, 4, 5), normal(rng, 2, 3, 4, 5), normal(rng, 2, 3, 4, 5)
    _, wrong = zoo.attention_mask_after_softmax(q, k, v)
    _, right = tbp.nn.scaled_dot_product_attention(q, k, v, causal=True)
    assert not np.allclose(wrong.sum(axis=-2), 1.0)
    np.testing.assert_allclose(right.sum(axis=-2), 1.0, rtol=1e-15)
    np.testing.assert_array_equal(wrong == 0, right == 0)  # the same entries are masked


def torch_attention(q: Array, k: Array, v: Array) -> Array:
    # torch takes (..., tokens, head_dim): each "head_dim tokens" matrix transposed at the boundary
    out = torch.nn.functional.scaled_dot_product_attention(
        torch.from_numpy(q).mT, torch.from_numpy(k).mT, torch.from_numpy(v).mT
    )
    return out.mT.numpy()


def test_attention_without_the_scale_passes_every_check_but_the_oracle(rng):
    q, k, v = normal(rng, 2, 3, 4, 5), normal(rng, 2, 3, 4, 6), normal(rng, 2, 3, 4, 6)

    def forward(q: Array, k: Array, v: Array) -> Array:
        return weighted_values(v, attention_weights(zoo.attention_scores_unscaled(q, k)))

    def backward(grad: Array, q: Array, k: Array, v: Array) -> tuple[Array, Array, Array]:
        weights = attention_weights(zoo.attention_scores_unscaled(q, k))
        return zoo.attention_backward_unscaled(grad, q, k, v, weights)

    wrong = forward(q, k, v)  # shapes pass, with query ≠ key ≠ head_dim
    assert tbp.gradcheck(forward, backward, [q, k, v]).passed  # self-consistent
    assert not np.allclose(wrong, torch_attention(q, k, v))
    right, _ = tbp.nn.scaled_dot_product_attention(q, k, v)
    np.testing.assert_allclose(right, torch_attention(q, k, v), rtol=1e-12)


# --- Images: pooling, batch norm, dropout --------------------------------------------------------


def distinct_images(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """Values ``1/size`` apart: no tie, and no central difference moves a window's maximum."""
    size = int(np.prod(shape))
    return (rng.permutation(size) / size).reshape(shape)


@pytest.mark.parametrize(
    ("window", "stride", "overlap"), [(2, 2, False), (3, 3, False), (2, 1, True), (3, 2, True)]
)
def test_max_pooling_with_assignment_is_caught_only_where_windows_overlap(
    rng, window, stride, overlap
):
    x = distinct_images(rng, (2, 7, 8, 3))
    layer = tbp.nn.MaxPool2d(window, stride)

    def forward(x: Array) -> Array:
        return tbp.nn.maxpool2d_forward(layer, x)[0]

    def check(backward: Callable[..., Array]) -> bool:
        return tbp.gradcheck(
            forward,
            lambda grad_a, x: backward(grad_a, tbp.nn.maxpool2d_forward(layer, x)[1]),
            [x],
            names=["x"],
            raise_exception=False,
        ).passed

    assert check(zoo.maxpool2d_backward_assign) is not overlap
    assert check(tbp.nn.maxpool2d_backward)


def torch_batch_norm_grad_x(gamma: Array, beta: Array, x: Array, grad_y: Array) -> Array:
    """PyTorch's ∂L/∂x of batch norm in training, on (batch, features) data, back to ours."""
    x_leaf = torch.tensor(x.T, requires_grad=True)
    y = torch.nn.functional.batch_norm(
        x_leaf, None, None, torch.tensor(gamma), torch.tensor(beta), training=True
    )
    y.backward(torch.tensor(grad_y.T))
    assert x_leaf.grad is not None
    return x_leaf.grad.numpy().T


def test_batch_norm_without_the_variance_term_passes_an_all_ones_test_and_nothing_else(rng):
    gamma, beta, x = normal(rng, 3), normal(rng, 3), normal(rng, 3, 6)
    _, cache = tbp.nn.batchnorm_forward(tbp.nn.BatchNorm(gamma, beta), x)
    for grad_y, fooled in [(np.ones((3, 6)), True), (normal(rng, 3, 6), False)]:
        wrong = zoo.batchnorm_grad_input_no_variance_term(grad_y, cache.x_hat, gamma, cache.rstd)
        expected = torch_batch_norm_grad_x(gamma, beta, x, grad_y)
        # With all ones the right answer is 0 and both sides are rounding noise (~1e-16).
        assert np.allclose(wrong, expected, rtol=1e-10, atol=1e-12) is fooled
        right = tbp.nn.batchnorm_backward(grad_y, cache)[1]
        np.testing.assert_allclose(right, expected, rtol=1e-10, atol=1e-12)
    with pytest.raises(GradcheckError):
        tbp.gradcheck(
            lambda x: tbp.nn.batchnorm_forward(tbp.nn.BatchNorm(gamma, beta), x)[0],
            lambda grad_y, x: zoo.batchnorm_grad_input_no_variance_term(
                grad_y, *_normalized(gamma, beta, x)
            ),
            [x],
        )


def _normalized(gamma: Array, beta: Array, x: Array) -> tuple[Array, Array, Array]:
    _, cache = tbp.nn.batchnorm_forward(tbp.nn.BatchNorm(gamma, beta), x)
    return cache.x_hat, gamma, cache.rstd


def test_dropout_needs_the_same_mask_in_every_evaluation_of_the_check(rng):
    layer, x = tbp.nn.Dropout(0.5), normal(rng, 4, 6)
    shared = np.random.default_rng(1)
    setups = {
        "fresh": lambda: tbp.Mode(training=True, rng=shared),
        "evaluation": tbp.Mode,
        "fixed": lambda: tbp.Mode(training=True, rng=np.random.default_rng(1)),
    }

    def passes(setup: str, backward: Callable[..., Array]) -> bool:
        mode = setups[setup]
        return tbp.gradcheck(
            lambda x: tbp.nn.dropout_forward(layer, x, mode())[0],
            lambda grad_a, x: backward(grad_a, tbp.nn.dropout_forward(layer, x, mode())[1]),
            [x],
            names=["x"],
            raise_exception=False,
        ).passed

    right, wrong = tbp.nn.dropout_backward, zoo.dropout_backward_unscaled
    assert not passes("fresh", right) and not passes("fresh", wrong)  # noise: no verdict
    assert passes("evaluation", right) and passes("evaluation", wrong)  # the identity: blind
    assert passes("fixed", right) and not passes("fixed", wrong)  # the one that tells


# --- Recurrent layers: backpropagation through time ----------------------------------------------
# features 3, hidden 4, seq 5, batch 2: every dimension its own size, so a sum over the wrong
# axis could not pass the shape check; these bugs keep every shape and only the gradient check
# (or PyTorch) sees them.


def recurrent_case(rng: np.random.Generator) -> tuple[Any, Array, Array]:
    from typedbackprop.nn.rnn import RNNCell

    cell = RNNCell(normal(rng, 4, 3), normal(rng, 4), normal(rng, 4, 4) * 0.5, normal(rng, 4))
    return cell, normal(rng, 3, 5, 2), normal(rng, 4, 5, 2)


def rnn_gradcheck(backward: Callable[..., Any], rng: np.random.Generator) -> bool:
    """Whether ``backward`` (the RNN's, as ``backward(grad_hidden_states, cache)``) passes the
    float64 gradient check of every weight, bias and input, over a 5-step sequence."""
    from typedbackprop.nn.rnn import RNN, RNNCell, rnn_forward

    cell, x, _ = recurrent_case(rng)

    def forward(W_ih: Array, b_ih: Array, W_hh: Array, b_hh: Array, x: Array) -> Array:
        return rnn_forward(RNN(RNNCell(W_ih, b_ih, W_hh, b_hh)), x)[0]

    def gradients(grad: Array, *arrays: Array) -> tuple[Array, ...]:
        grads, grad_x, _ = backward(grad, rnn_forward(RNN(RNNCell(*arrays[:4])), arrays[4])[1])
        return grads.cell.W_ih, grads.cell.b_ih, grads.cell.W_hh, grads.cell.b_hh, grad_x

    arrays = [cell.W_ih, cell.b_ih, cell.W_hh, cell.b_hh, x]
    return tbp.gradcheck(forward, gradients, arrays, raise_exception=False).passed


def right_rnn_backward(grad_hidden_states: Array, cache: Any) -> Any:
    from typedbackprop.nn.rnn import rnn_backward

    return rnn_backward(grad_hidden_states, cache)


@pytest.mark.parametrize("wrong", [zoo.rnn_backward_assign, zoo.rnn_backward_no_carry])
def test_bptt_without_the_sum_or_the_carried_gradient_fails_the_gradient_check(wrong, rng):
    assert not rnn_gradcheck(wrong, rng)
    assert rnn_gradcheck(right_rnn_backward, rng)


def test_bptt_with_assignment_keeps_step_zeros_gradient_alone(rng):
    from typedbackprop.nn.rnn import RNN, rnn_backward, rnn_cell_backward, rnn_forward

    cell, x, grad_hidden_states = recurrent_case(rng)
    _, cache = rnn_forward(RNN(cell), x)
    wrong, _, _ = zoo.rnn_backward_assign(grad_hidden_states, cache)
    right, _, _ = rnn_backward(grad_hidden_states, cache)
    # The loop runs from the last step to step 0, so = leaves step 0's share: the cell's
    # gradient at step 0, with the gradient step 1 carried back to it.
    _, _, carried = rnn_cell_backward(
        grad_hidden_states[:, 1] + rnn_backward(grad_hidden_states[:, 2:], _suffix(cache, 2))[2],
        cache.steps[1],
    )
    step_zero, _, _ = rnn_cell_backward(grad_hidden_states[:, 0] + carried, cache.steps[0])
    np.testing.assert_allclose(wrong.cell.W_hh, step_zero.W_hh, rtol=1e-12)
    assert not np.allclose(wrong.cell.W_hh, right.cell.W_hh)


def _suffix(cache: Any, start: int) -> Any:
    """The cache of the same forward pass from step ``start`` on (its state at ``start − 1``)."""
    from typedbackprop.nn.rnn import RNNCache

    steps = cache.steps[start:]
    return RNNCache(cache.layer, cache.x[:, start:], steps[0].h, cache.last_state, steps)


def test_bptt_without_the_carried_gradient_is_right_at_the_last_step_alone(rng):
    from typedbackprop.nn.rnn import RNN, rnn_forward

    cell, x, grad_hidden_states = recurrent_case(rng)
    _, cache = rnn_forward(RNN(cell), x)
    _, wrong, _ = zoo.rnn_backward_no_carry(grad_hidden_states, cache)
    _, right, _ = right_rnn_backward(grad_hidden_states, cache)  # held to torch.nn.RNN elsewhere
    # At the last step nothing is carried yet: the two agree there and nowhere else.
    np.testing.assert_allclose(wrong[:, -1], right[:, -1], rtol=1e-12)
    for t in range(4):
        assert not np.allclose(wrong[:, t], right[:, t], rtol=1e-3), t


def lstm_cell_gradcheck(backward: Callable[..., Any], rng: np.random.Generator) -> bool:
    """Whether the LSTM cell's ``backward`` passes the gradient check of every gate's
    parameters, the input and the previous state ``(h, c)``."""
    from dataclasses import fields

    from typedbackprop.nn.gate import Gate
    from typedbackprop.nn.lstm import LSTMCell, lstm_cell_forward

    gates = [
        Gate(normal(rng, 4, 3), normal(rng, 4), normal(rng, 4, 4), normal(rng, 4)) for _ in "ifgo"
    ]
    flat = [getattr(gate, field.name) for gate in gates for field in fields(Gate)]

    def cell_of(arrays: tuple[Array, ...]) -> Any:
        return LSTMCell(*(Gate(*arrays[4 * k : 4 * k + 4]) for k in range(4)))

    def forward(*arrays: Array) -> tuple[Array, Array]:
        return lstm_cell_forward(cell_of(arrays[:16]), arrays[16], (arrays[17], arrays[18]))[0]

    def gradients(grad: tuple[Array, Array], *arrays: Array) -> tuple[Array, ...]:
        _, cache = lstm_cell_forward(cell_of(arrays[:16]), arrays[16], (arrays[17], arrays[18]))
        grads, grad_x, (grad_h, grad_c) = backward(grad, cache)
        gate_grads = [getattr(grads, field.name) for field in fields(grads)]
        return (
            *(getattr(g, field.name) for g in gate_grads for field in fields(Gate)),
            grad_x,
            grad_h,
            grad_c,
        )

    arrays = [*flat, normal(rng, 3, 2), normal(rng, 4, 2), normal(rng, 4, 2)]
    return tbp.gradcheck(forward, gradients, arrays, raise_exception=False).passed


def test_the_forget_gates_derivative_with_the_new_cell_state_fails_the_gradient_check(rng):
    from typedbackprop.nn.lstm import lstm_cell_backward

    assert not lstm_cell_gradcheck(zoo.lstm_cell_backward_forget_with_c_new, rng)
    assert lstm_cell_gradcheck(lstm_cell_backward, rng)


def gru_cell_gradcheck(backward: Callable[..., Any], rng: np.random.Generator) -> bool:
    """Whether the GRU cell's ``backward`` passes the gradient check of every gate's
    parameters, the input and the previous state."""
    from dataclasses import fields

    from typedbackprop.nn.gate import Gate
    from typedbackprop.nn.gru import GRUCell, gru_cell_forward

    gates = [
        Gate(normal(rng, 4, 3), normal(rng, 4), normal(rng, 4, 4), normal(rng, 4)) for _ in "rzn"
    ]
    flat = [getattr(gate, field.name) for gate in gates for field in fields(Gate)]

    def cell_of(arrays: tuple[Array, ...]) -> Any:
        return GRUCell(*(Gate(*arrays[4 * k : 4 * k + 4]) for k in range(3)))

    def forward(*arrays: Array) -> Array:
        return gru_cell_forward(cell_of(arrays[:12]), arrays[12], arrays[13])[0]

    def gradients(grad: Array, *arrays: Array) -> tuple[Array, ...]:
        grads, grad_x, grad_h = backward(
            grad, gru_cell_forward(cell_of(arrays[:12]), arrays[12], arrays[13])[1]
        )
        gate_grads = [getattr(grads, field.name) for field in fields(grads)]
        return (
            *(getattr(g, field.name) for g in gate_grads for field in fields(Gate)),
            grad_x,
            grad_h,
        )

    arrays = [*flat, normal(rng, 3, 2), normal(rng, 4, 2)]
    return tbp.gradcheck(forward, gradients, arrays, raise_exception=False).passed


def test_the_grus_z_and_one_minus_z_swapped_fail_the_gradient_check(rng):
    from typedbackprop.nn.gru import gru_cell_backward

    assert not gru_cell_gradcheck(zoo.gru_cell_backward_z_swapped, rng)
    assert gru_cell_gradcheck(gru_cell_backward, rng)


# --- Training: clipping by the global norm ------------------------------------------------------
# A dense layer, out 2, features 3; three steps whose gradients' global norms are 40, 0.05 and 15
# against max_norm 1: clipped, left alone, clipped. The gradients are right and every shape is
# too; only an oracle (torch.nn.utils.clip_grad_norm_ before torch.optim's step) sees the order.
MAX_NORM = 1.0


def clipping_case(rng: np.random.Generator) -> tuple[Any, list[Any]]:
    from typedbackprop.optimizers import global_norm

    layer = tbp.nn.Dense(normal(rng, 2, 3), normal(rng, 2))
    grads = []
    for norm in (40.0, 0.05, 15.0):
        W, b = normal(rng, 2, 3), normal(rng, 2)
        scale = norm / global_norm([tbp.nn.Dense(W, b)])
        grads.append(tbp.nn.Dense(W * scale, b * scale))
    return layer, grads


def clipped_step(
    optimizer: Any, layers: list[Any], grads: list[Any], state: Any, max_norm: float
) -> Any:
    """The fix, as ``train_steps`` takes its step: clip, then step with the clipped gradient."""
    from typedbackprop.optimizers import clip_by_global_norm

    grads, _ = clip_by_global_norm(grads, max_norm)
    return optimizer.step(layers, grads, state)


def run_steps(step: Callable[..., Any], optimizer: Any, layer: Any, grads: list[Any]) -> Any:
    layers, state = [layer], optimizer.init([layer])
    for grad in grads:
        layers, state = step(optimizer, layers, [grad], state, MAX_NORM)
    return layers[0]


def torch_steps(make_optimizer: Callable[..., Any], layer: Any, grads: list[Any]) -> list[Any]:
    """The oracle: torch.nn.utils.clip_grad_norm_, then the torch.optim step, per step."""
    from typedbackprop.optimizers import global_norm

    params = [torch.tensor(layer.W, requires_grad=True), torch.tensor(layer.b, requires_grad=True)]
    optimizer = make_optimizer(params)
    for grad in grads:
        params[0].grad, params[1].grad = torch.tensor(grad.W), torch.tensor(grad.b)
        norm = global_norm([grad])
        # PyTorch's factor is max_norm / (‖g‖ + 1e-6); this max_norm makes it max_norm / ‖g‖
        torch.nn.utils.clip_grad_norm_(params, MAX_NORM * (norm + 1e-6) / norm)
        optimizer.step()
    return [param.detach() for param in params]


OPTIMIZERS = {
    "SGD": (
        lambda: tbp.optimizers.SGD(learning_rate=0.1, momentum=0.9),
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    ),
    "AdamW": (
        lambda: tbp.optimizers.AdamW(learning_rate=0.01),
        lambda params: torch.optim.AdamW(params, lr=0.01),
    ),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_clipping_after_the_update_passes_every_check_but_the_oracle(name, rng):
    ours, theirs = OPTIMIZERS[name]
    layer, grads = clipping_case(rng)
    W, b = torch_steps(theirs, layer, grads)
    right = run_steps(clipped_step, ours(), layer, grads)
    assert_close(right.W, W)
    assert_close(right.b, b)
    wrong = run_steps(zoo.clipped_step_after_the_update, ours(), layer, grads)
    assert wrong.W.shape == W.shape and wrong.b.shape == b.shape
    assert not np.allclose(wrong.W, W.numpy(), rtol=1e-3)


def test_a_clipped_sgd_step_moves_the_parameters_by_at_most_lr_times_max_norm(rng):
    from typedbackprop.optimizers import global_norm

    layer, grads = clipping_case(rng)
    sgd = tbp.optimizers.SGD(learning_rate=0.1)

    def moved(step: Callable[..., Any]) -> float:
        stepped = run_steps(step, sgd, layer, grads[:1])  # ‖g‖ = 40
        return global_norm([tbp.nn.tree.map_leaves(np.subtract, stepped, layer)])

    assert moved(clipped_step) <= 0.1 * MAX_NORM * (1 + 1e-12)
    assert moved(zoo.clipped_step_after_the_update) > 39 * 0.1 * MAX_NORM  # η ‖g‖: 40 η


def test_train_steps_clips_before_its_step(rng):
    """The fix is training's own order: one SGD step of ``train_steps(..., clip=1)`` on one
    example whose gradient's norm is far above 1 moves the layer by η · 1 exactly."""
    from typedbackprop.optimizers import global_norm
    from typedbackprop.training import train_steps

    layer = tbp.nn.Dense(normal(rng, 2, 3) * 10, normal(rng, 2) * 10)
    x, y = normal(rng, 3, 1) * 10, normal(rng, 2, 1)
    _, grads = tbp.nn.network_loss_and_grads([layer], x, y, "squared_error")
    assert global_norm(grads) > 100 * MAX_NORM
    for clip, expected in ((MAX_NORM, 0.1 * MAX_NORM), (None, 0.1 * global_norm(grads))):
        [stepped], _ = train_steps(
            [layer], "squared_error", x, y, steps=1, batch_size=1, rng=rng, clip=clip,
            optimizer=lambda step: tbp.optimizers.SGD(learning_rate=0.1),
        )  # fmt: skip
        moved = global_norm([tbp.nn.tree.map_leaves(np.subtract, stepped, layer)])
        assert_close(moved, expected, rtol=1e-12)
