"""Tests that kill the mutants the rest of the suite let survive (see docs/mutation-testing.md).

Each test pins one behaviour that a mutant changed without any other test noticing: the whole
text of an error message (a regex search for a phrase passes a message with extra text around
it), a default argument, a report's exact table, an edge case such as an empty input, or the
plain checks that still guard ``loss_and_grads`` when the runtime checks are off.
"""

import importlib
import math
import re
import sys

import numpy as np
import pytest

import typedbackprop as tbp
from typedbackprop.nn.network import check_names


def whole(message: str) -> str:
    """A ``match`` pattern for exactly ``message``, no more."""
    return f"^{re.escape(message)}$"


def tiny_network(seed: int = 0) -> tuple[list[tbp.Dense], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    layers = [
        tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
        tbp.Dense(rng.standard_normal((2, 4)), rng.standard_normal(2)),
    ]
    return layers, rng.standard_normal((3, 5)), rng.standard_normal((2, 5))


# --- layers and losses: the words of each refusal -----------------------------------------------


def test_empty_batch_message():
    with pytest.raises(ValueError, match=whole("empty batch: a mean over 0 examples is undefined")):
        tbp.nn.squared_error(np.zeros((2, 0)), np.zeros((2, 0)))


def test_zero_classes_message():
    with pytest.raises(ValueError, match=whole("softmax over 0 classes is undefined")):
        tbp.nn.softmax_forward(np.zeros((0, 3)))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda z: tbp.nn.softmax_forward(z), id="softmax"),
        pytest.param(lambda z: tbp.nn.cross_entropy(z, np.array([0, 1, 0])), id="cross_entropy"),
    ],
)
def test_non_finite_logit_message_names_the_example(call):
    z = np.zeros((2, 3))
    z[1, 2] = np.inf
    with pytest.raises(
        ValueError, match=whole("the largest logit of each example contains inf at index (2,)")
    ):
        call(z)


@pytest.mark.parametrize("bad", [1.5, -0.25, np.nan], ids=["above", "below", "nan"])
def test_binary_cross_entropy_names_the_first_target_outside_0_1(bad):
    # Entries exactly 0 and exactly 1 come first: they are inside [0, 1], and must not be named.
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.5]])
    y[1, 2] = bad
    message = f"binary_cross_entropy targets must lie in [0, 1]; y[1, 2] is {bad}"
    with pytest.raises(ValueError, match=whole(message)):
        tbp.nn.binary_cross_entropy(np.zeros((2, 3)), y)


# --- network: names, chaining, dtypes -----------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            ("sigmod", "identity", None),
            "unknown activation 'sigmod'; choose one of "
            "('sigmoid', 'tanh', 'relu', 'leaky_relu', 'identity')",
        ),
        (
            ("relu", "relu", None),
            "unknown output_activation 'relu'; choose one of "
            "('identity', 'sigmoid', 'tanh', 'softmax')",
        ),
        (
            ("relu", "identity", "mse"),
            "unknown loss 'mse'; choose one of "
            "('squared_error', 'binary_cross_entropy', 'cross_entropy', 'token_cross_entropy')",
        ),
    ],
)
def test_unknown_names_are_refused_with_the_choices(names, message):
    with pytest.raises(ValueError, match=whole(message)):
        check_names(*names)


def test_no_layers_message():
    with pytest.raises(ValueError, match=whole("a network needs at least one layer")):
        tbp.predict([], np.zeros((3, 5)))


def test_first_layer_mismatch_blames_x_without_a_batch_first_hint():
    layers, _, _ = tiny_network()
    x = np.zeros((5, 7))  # 5 features, 7 examples: wrong width, and not batch-first either
    message = (
        "layers do not chain: layer 0 expects inp=3 inputs but x has 5 features "
        "(W of layer 0 has shape (4, 3))"
    )
    with pytest.raises(ValueError, match=whole(message)):
        tbp.predict(layers, x)


def test_batch_first_x_gets_the_hint():
    layers, x, _ = tiny_network()
    message = (
        "x looks batch-first: layer 0 expects inp=3 inputs but x has shape (5, 3); typedbackprop "
        "takes features first, pass x.T\n"
        "layers do not chain: layer 0 expects inp=3 inputs but x has 5 features "
        "(W of layer 0 has shape (4, 3))"
    )
    with pytest.raises(ValueError, match=whole(message)):
        tbp.predict(layers, x.T)


def test_later_mismatch_blames_the_layer_below_without_a_hint():
    # Layer 1 expects 5 inputs, layer 0 gives 4; x has 5 examples, the number layer 1 expects,
    # yet a hint about x's layout would be wrong here: x is fine.
    rng = np.random.default_rng(1)
    layers = [
        tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
        tbp.Dense(rng.standard_normal((2, 5)), rng.standard_normal(2)),
    ]
    message = (
        "layers do not chain: layer 1 expects inp=5 inputs but layer 0 gives 4 features "
        "(W of layer 1 has shape (2, 5))"
    )
    with pytest.raises(ValueError, match=whole(message)):
        tbp.predict(layers, rng.standard_normal((3, 5)))


def test_a_bias_of_another_dtype_is_refused():
    layers, x, y = tiny_network()
    layers[1] = tbp.Dense(layers[1].W, layers[1].b.astype(np.float32))
    message = (
        "dtypes differ: x is float64 but layer 1 has W float64 and b float32; NumPy would "
        "silently compute in the wider one"
    )
    with pytest.raises(TypeError, match=whole(message)):
        tbp.loss_and_grads(layers, x, y)


@pytest.mark.parametrize(
    ("loss", "output_activation", "y", "message"),
    [
        (
            "binary_cross_entropy",
            "sigmoid",
            np.array([0, 1, 0, 1, 1]),
            "binary_cross_entropy takes float targets of shape (out, batch); got int64 (5,)",
        ),
        (
            "squared_error",
            "identity",
            np.array([0, 1, 0, 1, 1]),
            "squared_error takes float targets of shape (out, batch); got int64 (5,)",
        ),
    ],
)
def test_labels_given_to_a_loss_that_takes_targets(loss, output_activation, y, message):
    layers, x, _ = tiny_network()
    with pytest.raises(TypeError, match=whole(message)):
        tbp.loss_and_grads(layers, x, y, output_activation=output_activation, loss=loss)


def test_predict_defaults_are_a_sigmoid_network_with_an_identity_output():
    layers, x, _ = tiny_network()
    hidden = tbp.nn.sigmoid_forward(layers[0].W @ x + layers[0].b[:, None])
    expected = layers[1].W @ hidden + layers[1].b[:, None]
    np.testing.assert_array_equal(tbp.predict(layers, x), expected)
    np.testing.assert_array_equal(
        tbp.predict(layers, x, "sigmoid", "tanh"), tbp.nn.tanh_forward(expected)
    )


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_backward_on_its_own_gives_what_loss_and_grads_gives(activation):
    layers, x, y = tiny_network()
    _, expected = tbp.loss_and_grads(layers, x, y, activation)
    caches = tbp.forward(layers, x, activation)
    delta_output = (caches[-1].a - y) / x.shape[1]  # identity output, squared error: BP1
    call = (layers, caches, delta_output) + (() if activation == "sigmoid" else (activation,))
    grads = tbp.backward(*call)
    for grad, want in zip(grads, expected, strict=True):
        np.testing.assert_allclose(grad.W, want.W, rtol=1e-14, atol=0)
        np.testing.assert_allclose(grad.b, want.b, rtol=1e-14, atol=0)


def test_backward_refuses_caches_of_another_network():
    layers, x, _ = tiny_network()
    caches = tbp.forward(layers, x)
    with pytest.raises(ValueError, match=whole("2 layers but 1 caches")):
        tbp.backward(layers, caches[:1], np.zeros((2, 5)))


@pytest.fixture
def unchecked():
    """A second copy of the package, imported with ``TYPEDBACKPROP_CHECKS=0``.

    In this process rather than a subprocess, so that a mutation tool that follows which tests
    call which function sees these calls too. The modules of the checked copy are put back.
    """
    ours = [name for name in sys.modules if name.partition(".")[0] == "typedbackprop"]
    saved = {name: sys.modules.pop(name) for name in ours}
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TYPEDBACKPROP_CHECKS", "0")
            module = importlib.import_module("typedbackprop")
    finally:
        for name in [name for name in sys.modules if name.partition(".")[0] == "typedbackprop"]:
            del sys.modules[name]
        sys.modules.update(saved)
    assert not module.CHECKS_ENABLED
    return module


@pytest.mark.parametrize(
    ("loss", "output_activation", "y", "message"),
    [
        (
            "cross_entropy",
            "softmax",
            np.array([0.0, 1.0, 0.0, 1.0, 1.0]),
            "cross_entropy takes integer labels of shape (batch,); got float64 (5,)",
        ),
        (
            "cross_entropy",
            "softmax",
            np.zeros((2, 5), dtype=np.int64),
            "cross_entropy takes integer labels of shape (batch,); got int64 (2, 5)",
        ),
        (
            "squared_error",
            "identity",
            np.zeros((2, 5), dtype=np.int64),
            "squared_error takes float targets of shape (out, batch); got int64 (2, 5)",
        ),
        (
            "squared_error",
            "identity",
            np.zeros(5),
            "squared_error takes float targets of shape (out, batch); got float64 (5,)",
        ),
    ],
)
def test_with_checks_off_the_plain_checks_still_refuse_wrong_targets(
    unchecked, loss, output_activation, y, message
):
    # Without the runtime checks, loss_and_grads's own checks are all that stand between a
    # wrong kind of target and a silent wrong answer or a NumPy error that says nothing.
    rng = np.random.default_rng(0)
    layers = [
        unchecked.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
        unchecked.Dense(rng.standard_normal((2, 4)), rng.standard_normal(2)),
    ]
    x = rng.standard_normal((3, 5))
    with pytest.raises(TypeError, match=whole(message)):
        unchecked.loss_and_grads(layers, x, y, output_activation=output_activation, loss=loss)


# --- gradcheck ----------------------------------------------------------------------------------


def squares(x):
    return x * x


def squares_backward(grad_output, x):
    return 2 * grad_output * x


def test_report_table_word_for_word():
    report = tbp.GradcheckReport(
        arguments=(
            tbp.ArgumentCheck("W1", 1.25e-9, 3.5e-10, (0, 2), (1,), 0.5, 0.5000000004, True),
            tbp.ArgumentCheck("b1", 0.5, 2.0, (1,), (), 2.0, 4.0, False),
        ),
        eps=1e-6,
        rtol=1e-7,
        atol=1e-8,
        problems=("backward is not deterministic for b1",),
    )
    assert str(report) == "\n".join(
        [
            "gradcheck (central differences, eps=1e-06; "
            "pass if |analytic - numerical| <= 1e-08 + 1e-07 |numerical|)",
            "input        rel. error max abs err  worst entry",
            "W1             1.25e-09    3.50e-10  d output[1] / d W1[0, 2]: "
            "analytic 0.5, numerical 0.5000000004  ok",
            "b1             5.00e-01    2.00e+00  d output / d b1[1]: "
            "analytic 2, numerical 4  FAILED",
            "problem: backward is not deterministic for b1",
            "FAILED",
        ]
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            np.ones(3, dtype=np.float32),
            "float32. float32 central differences are accurate to about 1e-3 at best, too coarse "
            "for the check: cast with .astype(np.float64)",
        ),
        (
            np.ones(3, dtype=np.int64),
            "int64, which has no derivative: a step of eps cannot be added to it. An index or a "
            "label is not differentiated: close over it in forward and backward instead of "
            "passing it; data stored as integers: cast with .astype(np.float64)",
        ),
        (
            1.5,
            "a number (float), not an array: pass np.array(value, dtype=np.float64), a 0-d array "
            "that can be perturbed in place",
        ),
    ],
    ids=["float32", "int64", "float"],
)
def test_refusal_of_anything_but_float64_word_for_word(value, message):
    message = f"gradcheck needs float64 arrays; input 1 is {message}"
    with pytest.raises(TypeError, match=whole(message)):
        tbp.gradcheck(lambda a, b: a, lambda g, a, b: (g, g), [np.ones(3), value])


def test_inputs_are_named_input_i_when_forward_has_no_signature():
    # max is a builtin without an introspectable signature: the names fall back to input<i>.
    report = tbp.gradcheck(
        max,
        lambda grad_output, a, b: [np.zeros(()), grad_output * np.ones(())],
        [np.array(1.0), np.array(2.0)],
    )
    assert [argument.name for argument in report.arguments] == ["input0", "input1"]


def test_one_name_per_input():
    with pytest.raises(ValueError, match=whole("1 names for 2 inputs: give one name per input")):
        tbp.gradcheck(lambda a, b: a, lambda g, a, b: (g, g), [np.ones(2), np.ones(2)], names=["a"])


def test_a_nondeterministic_backward_is_caught_for_a_scalar_output():
    # One output entry: the only row of the Jacobian is the one called twice.
    rng = np.random.default_rng(0)
    report = tbp.gradcheck(
        lambda x: float(np.sum(x * x)),
        lambda grad_output, x: 2 * grad_output * x + 1e-3 * rng.standard_normal(x.shape),
        [np.array([1.0, 2.0])],
        raise_exception=False,
    )
    assert report.problems == ("backward is not deterministic for x",)


def test_relative_error_is_the_frobenius_ratio():
    # The backward forgets the 2: analytic J = diag(x), numerical J = diag(2x), so
    # ‖J_a − J_n‖ / max(‖J_a‖, ‖J_n‖) = ‖x‖ / ‖2x‖ = ½ (up to the O(h²) of the differences).
    x = np.array([0.5, -3.0, 2.0])
    report = tbp.gradcheck(squares, lambda g, x: g * x, [x], raise_exception=False)
    assert abs(report.arguments[0].relative_error - 0.5) < 1e-9
    # All-zero Jacobians on both sides agree exactly: relative error 0, not 0/0.
    zero = tbp.gradcheck(lambda x: 0 * x, lambda g, x: 0 * g, [x])
    assert zero.arguments[0].relative_error == 0.0


def test_an_empty_input_passes_and_the_next_input_is_still_checked():
    def forward(empty, x):
        return float(np.sum(empty)) + float(np.sum(x * x))

    def backward(grad_output, empty, x):
        return [np.zeros_like(empty), grad_output * x]  # wrong for x: the 2 is missing

    report = tbp.gradcheck(
        forward, backward, [np.empty((0, 3)), np.array([1.0, 2.0])], raise_exception=False
    )
    assert report.arguments[0] == tbp.ArgumentCheck("empty", 0.0, 0.0, (), (), 0.0, 0.0, True)
    assert len(report.arguments) == 2 and not report.arguments[1].passed


def test_with_atol_0_a_passing_check_reports_a_nonzero_entry_as_worst():
    # Off the diagonal the Jacobian of x² is exactly 0 on both sides: tolerance 0, error 0,
    # not past its tolerance at all. The worst entry is on the diagonal.
    x = np.array([0.5, -3.0, 2.0])
    report = tbp.gradcheck(squares, squares_backward, [x], atol=0.0)
    check = report.arguments[0]
    assert check.worst_input_index == check.worst_output_index
    assert check.analytic != 0.0


def test_a_nan_in_an_input_is_not_reported_as_modified():
    x = np.array([1.0, np.nan])
    report = tbp.gradcheck(squares, squares_backward, [x], raise_exception=False)
    assert not any("modified" in problem for problem in report.problems)
    assert not report.passed  # NaN gradients never pass


def test_numerical_derivatives_are_taken_in_float64_whatever_forward_returns():
    # A forward that rounds its output to float32 still has its differences taken in float64.
    x = np.array([1.0])
    report = tbp.gradcheck(
        lambda x: (x * x).astype(np.float32), squares_backward, [x], raise_exception=False
    )
    h = report.eps
    above, below = np.float32((1 + h) ** 2), np.float32((1 - h) ** 2)
    assert report.arguments[0].numerical == (np.float64(above) - np.float64(below)) / (2 * h)


def test_numerical_gradient_is_float64_for_float32_x():
    x = np.array([1.0, -2.0], dtype=np.float32)
    gradient = tbp.numerical_gradient(lambda p: float(np.sum(p**3)), x)
    assert gradient.dtype == np.float64
    np.testing.assert_allclose(gradient, [3.0, 12.0], rtol=1e-9)


def test_gradcheck_network_defaults_and_settings_reach_gradcheck():
    layers, x, y = tiny_network()
    default = tbp.gradcheck_network(layers, x, y)
    explicit = tbp.gradcheck_network(layers, x, y, "sigmoid", "identity", "squared_error")
    assert default == explicit and default.passed
    report = tbp.gradcheck_network(layers, x, y, eps=1e-5, rtol=1e-6, atol=1e-9)
    assert (report.eps, report.rtol, report.atol) == (1e-5, 1e-6, 1e-9)
    # No central difference is exact: with both tolerances 0 the check fails, and raises.
    with pytest.raises(tbp.GradcheckError):
        tbp.gradcheck_network(layers, x, y, rtol=0.0, atol=0.0, raise_exception=True)
    assert not tbp.gradcheck_network(layers, x, y, rtol=0.0, atol=0.0, raise_exception=False)


def test_with_atol_0_an_entry_numerically_0_but_analytically_not_is_the_worst():
    # The identity's Jacobian is I; this backward adds 1 off the diagonal. There the numerical
    # entry is exactly 0, so with atol=0 the tolerance is 0 and any difference is infinitely
    # past it: that entry, not a diagonal one, is the worst.
    x = np.array([1.0, 2.0])
    report = tbp.gradcheck(
        lambda x: x.copy(), lambda g, x: g + g[::-1], [x], atol=0.0, raise_exception=False
    )
    check = report.arguments[0]
    assert check.worst_output_index != check.worst_input_index
    assert (check.analytic, check.numerical) == (1.0, 0.0)


# --- activations: the sigmoid's two forms ---------------------------------------------------------

MIXED = np.array([[-1e4, -3.0, -0.5, 0.0, 0.5, 3.0, 40.0]])
"""One entry far enough out that exp(-z) would overflow, the rest where either form works."""


def test_sigmoid_stable_form_is_right_for_every_entry():
    # One extreme entry sends the whole array down the stable path; each entry must still be
    # σ(z), computed here from the textbook form entry by entry (exp(1e4) skipped: σ = 0).
    expected = [[0.0] + [1 / (1 + math.exp(-z)) for z in MIXED[0, 1:]]]
    np.testing.assert_allclose(tbp.nn.sigmoid_forward(MIXED), expected, rtol=1e-15, atol=0)


def test_sigmoid_of_a_byte_swapped_array_takes_the_stable_form_and_agrees():
    swapped = MIXED[:, 1:].astype(">f8")  # not in the table of exp limits
    np.testing.assert_array_equal(
        tbp.nn.sigmoid_forward(swapped),
        tbp.nn.sigmoid_forward(np.concatenate([MIXED, MIXED]))[:1, 1:],
    )


def test_sigmoid_takes_the_textbook_form_wherever_it_cannot_overflow():
    # Bit for bit 1 / (1 + exp(-z)) (on negative z the stable form would differ in last bits).
    z = np.random.default_rng(0).normal(scale=30.0, size=(6, 50))
    np.testing.assert_array_equal(tbp.nn.sigmoid_forward(z), 1 / (1 + np.exp(-z)))
    z32 = (z / 4).astype(np.float32)  # float32 overflows past -z ≈ 88
    np.testing.assert_array_equal(tbp.nn.sigmoid_forward(z32), 1 / (1 + np.exp(-z32)))


@pytest.mark.parametrize("shape", [(3, 0), (0, 4)])
def test_sigmoid_of_an_empty_array(shape):
    a = tbp.nn.sigmoid_forward(np.zeros(shape))
    assert a.shape == shape and a.dtype == np.float64
