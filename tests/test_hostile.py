"""Hostile and extreme input: it works correctly or raises an error that says what is wrong.

Warnings are errors in this suite (pyproject.toml), so "finite and no warning" is checked by
every call below that does not raise. The last part runs on every layer family of the table in
``tests/families.py``: NaN input, an empty batch, read-only arrays.
"""

from typing import Any

import numpy as np
import pytest
from families import CASES, FamilyCase
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jaxtyping import TypeCheckError

import typedbackprop as tbp
from typedbackprop.nn.families import parameters

FLOATS = [np.float32, np.float64]

ELEMENTWISE = [
    (tbp.nn.sigmoid_forward, tbp.nn.sigmoid_backward),
    (tbp.nn.tanh_forward, tbp.nn.tanh_backward),
    (tbp.nn.relu_forward, tbp.nn.relu_backward),
    (tbp.nn.leaky_relu_forward, tbp.nn.leaky_relu_backward),
    (tbp.nn.identity_forward, tbp.nn.identity_backward),
    (tbp.nn.softmax_forward, tbp.nn.softmax_backward),
]


def huge_arrays(dtype, max_side=5):
    """2-D arrays with entries up to ±1e300 (float64) or ±1e36 (float32), far beyond ±1e4.

    The bound is a hundredth of the largest finite value, so that a difference of two entries,
    as in ``z − max(z)``, is still finite: logits of ±1.8e308 are not a question of stability.
    """
    limit = 1e300 if dtype == np.float64 else float(np.float32(1e36))
    width = np.finfo(dtype).bits
    return hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=max_side),
        elements=st.floats(-limit, limit, width=width)
        | st.sampled_from([0.0, 1e4, -1e4, 1e30, -1e30, limit, -limit]),
    )


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("forward", "backward"), ELEMENTWISE)
@settings(deadline=None, max_examples=40)
@given(data=st.data())
def test_extreme_pre_activations_give_finite_values_and_gradients(dtype, forward, backward, data):
    z = data.draw(huge_arrays(dtype))
    a = forward(z)
    grad_z = backward(np.ones_like(z), z, a)
    assert a.dtype == dtype and grad_z.dtype == dtype
    if forward is not tbp.nn.identity_forward:  # identity passes huge values through, as it must
        assert np.isfinite(a).all() and np.isfinite(grad_z).all()


@pytest.mark.parametrize("dtype", FLOATS)
@settings(deadline=None, max_examples=40)
@given(data=st.data())
def test_losses_from_extreme_logits_are_finite(dtype, data):
    z = data.draw(huge_arrays(dtype))
    labels = data.draw(hnp.arrays(np.int64, z.shape[1], elements=st.integers(0, z.shape[0] - 1)))
    targets = data.draw(hnp.arrays(dtype, z.shape, elements=st.sampled_from([0.0, 0.5, 1.0])))
    for loss, grad in (tbp.nn.cross_entropy(z, labels), tbp.nn.binary_cross_entropy(z, targets)):
        assert np.isfinite(loss) or loss == np.inf  # only a probability of exactly 0 is inf
        assert np.isfinite(grad).all() and grad.dtype == dtype


def test_pre_activations_of_a_magnitude_of_ten_thousand():
    z = np.array([[-1e4, -1e3, 0.0, 1e3, 1e4]])
    np.testing.assert_array_equal(tbp.nn.sigmoid_forward(z), [[0.0, 0.0, 0.5, 1.0, 1.0]])
    np.testing.assert_array_equal(tbp.nn.softmax_forward(z.T), [[0.0], [0.0], [0.0], [0.0], [1.0]])
    loss, grad = tbp.nn.binary_cross_entropy(z, np.array([[0.0, 0.0, 1.0, 1.0, 1.0]]))
    assert loss == pytest.approx(np.log(2) / 5)
    loss, _ = tbp.nn.cross_entropy(z.T, np.array([0]))
    assert loss == 2e4  # −log softmax = logsumexp − z_label = 1e4 − (−1e4), exactly


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_logits_are_named(bad):
    z = np.zeros((3, 4))
    z[1, 2] = bad
    with pytest.raises(ValueError, match=r"logits contains .* at index \(1, 2\)"):
        tbp.nn.binary_cross_entropy(z, np.zeros((3, 4)))
    if bad != -np.inf:  # a logit of −inf is a probability of 0, not an error
        with pytest.raises(ValueError, match=r"largest logit .* at index \(2,\)"):
            tbp.nn.cross_entropy(z, np.zeros(4, dtype=np.int64))
        with pytest.raises(ValueError, match=r"largest logit .* at index \(2,\)"):
            tbp.nn.softmax_forward(z)


def test_minus_infinity_logit_is_a_probability_of_zero():
    z = np.array([[0.0, 0.0], [-np.inf, 0.0]])
    np.testing.assert_array_equal(tbp.nn.softmax_forward(z), [[1.0, 0.5], [0.0, 0.5]])
    loss, grad = tbp.nn.cross_entropy(z, np.array([0, 1]))
    assert loss == pytest.approx(np.log(2) / 2)


def test_nan_propagates_through_elementwise_layers_without_warnings():
    z = np.array([[np.nan, 1.0]])
    for forward, backward in ELEMENTWISE[:-1]:
        a = forward(z)
        assert np.isnan(a[0, 0]) and np.isfinite(a[0, 1])
        assert np.isfinite(backward(np.ones_like(z), z, a)[0, 1])


def test_empty_batches():
    layers = [tbp.Dense(np.ones((2, 3)), np.zeros(2))]
    caches = tbp.forward(layers, np.ones((3, 0)))
    assert caches[-1].a.shape == (2, 0)
    with pytest.raises(ValueError, match="empty batch"):
        tbp.loss_and_grads(layers, np.ones((3, 0)), np.ones((2, 0)))
    with pytest.raises(ValueError, match="empty batch"):
        tbp.nn.cross_entropy(np.ones((2, 0)), np.zeros(0, dtype=np.int64))


def test_zero_width_layers_work():
    layers = [tbp.Dense(np.ones((0, 3)), np.ones(0)), tbp.Dense(np.ones((2, 0)), np.ones(2))]
    x, y = np.ones((3, 4)), np.ones((2, 4))
    loss, grads = tbp.loss_and_grads(layers, x, y, activation="relu")
    # z2 = W2 a1 + b2 = b2 = 1 for every example: the target exactly, so zero loss.
    assert loss == 0.0
    assert grads[0].W.shape == (0, 3) and grads[1].W.shape == (2, 0)
    np.testing.assert_array_equal(grads[1].b, [0.0, 0.0])


def test_zero_classes_are_refused():
    with pytest.raises(ValueError, match="0 classes"):
        tbp.nn.softmax_forward(np.ones((0, 3)))
    with pytest.raises(ValueError, match="outside \\[0, 0\\)"):
        tbp.nn.cross_entropy(np.ones((0, 3)), np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize(
    "bad",
    [
        np.ones((3, 4), dtype=np.int64),
        np.ones((3, 4), dtype=object),
        np.ones((3, 4), dtype=bool),
        np.ones((3, 4), dtype=np.complex128),
        [[1.0] * 4] * 3,
        np.ones((3, 4, 1)),
        np.float64(1.0),
    ],
    ids=["int", "object", "bool", "complex", "list", "3-d", "scalar"],
)
@pytest.mark.parametrize(
    "call",
    [
        lambda bad: tbp.nn.sigmoid_forward(bad),
        lambda bad: tbp.nn.affine_forward(np.ones((2, 3)), np.ones(2), bad),
        lambda bad: tbp.nn.affine_grad_params(np.ones((2, 4)), bad),
        lambda bad: tbp.nn.squared_error(bad, np.ones((3, 4))),
        lambda bad: tbp.nn.softmax_backward(bad, np.ones((3, 4)), np.ones((3, 4))),
        lambda bad: tbp.loss_and_grads(
            [tbp.Dense(np.ones((2, 3)), np.ones(2))], bad, np.ones((2, 4))
        ),
    ],
    ids=["sigmoid", "affine", "grad_params", "squared_error", "softmax_backward", "network"],
)
def test_wrong_kinds_of_array_are_refused_by_the_shape_check(call, bad):
    with pytest.raises(TypeCheckError):
        call(bad)


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0]), np.array([[0, 1]]), np.array([0, 1, 1])])
def test_labels_of_the_wrong_kind(labels):
    with pytest.raises(TypeCheckError):
        tbp.nn.cross_entropy(np.ones((2, 2)), labels)


@settings(deadline=None, max_examples=30)
@given(
    rows=st.integers(1, 5),
    batch=st.integers(1, 5),
    order=st.sampled_from(["C", "F"]),
    step=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_strided_fortran_and_read_only_inputs_give_identical_results(
    rows, batch, order, step, seed
):
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(rows, 3)), rng.normal(size=rows)
    x = rng.normal(size=(3, batch))
    wide = np.zeros((3, batch * step), order=order)
    wide[:, ::step] = x
    view = wide[:, ::step]
    view.flags.writeable = False
    W_read_only = np.array(W, order=order)
    W_read_only.flags.writeable = False
    expected = tbp.nn.affine_forward(W, b, x)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(
        tbp.nn.affine_forward(W_read_only, b, view), expected, rtol=1e-14, atol=1e-14 * scale
    )
    grad_z = rng.normal(size=(rows, batch))
    for got, want in zip(
        tbp.nn.affine_backward(grad_z, W_read_only, view),
        tbp.nn.affine_backward(grad_z, W, x),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14 * np.abs(want).max())
    for forward, backward in ELEMENTWISE:
        a = forward(view)
        np.testing.assert_array_equal(a, forward(x))
        np.testing.assert_array_equal(backward(view, view, a), backward(x, x, forward(x)))


@pytest.mark.parametrize("dtype", FLOATS)
def test_no_public_function_writes_to_its_arguments(dtype):
    rng = np.random.default_rng(0)
    arrays = {
        "W": rng.normal(size=(3, 4)),
        "b": rng.normal(size=3),
        "a_prev": rng.normal(size=(4, 5)),
        "z": rng.normal(size=(3, 5)),
        "grad": rng.normal(size=(3, 5)),
        "y": rng.random((3, 5)),
    }
    arrays = {name: value.astype(dtype) for name, value in arrays.items()}
    labels = np.array([0, 2, 1, 1, 0])
    copies = {name: value.copy() for name, value in arrays.items()}
    for value in [*arrays.values(), labels]:
        value.flags.writeable = False
    W, b, a_prev, z, grad, y = arrays.values()
    tbp.nn.affine_forward(W, b, a_prev)
    tbp.nn.affine_backward(grad, W, a_prev)
    for forward, backward in ELEMENTWISE:
        backward(grad, z, forward(z))
    tbp.nn.squared_error(z, y)
    tbp.nn.binary_cross_entropy(z, y)
    tbp.nn.cross_entropy(z, labels)
    layers = [tbp.Dense(W, b)]
    tbp.loss_and_grads(layers, a_prev, labels, output_activation="softmax", loss="cross_entropy")
    tbp.loss_and_grads(layers, a_prev, y, output_activation="sigmoid", loss="binary_cross_entropy")
    for name, value in arrays.items():
        np.testing.assert_array_equal(value, copies[name], err_msg=name)


# --- every family, from the table in tests/families.py ------------------------------------------

FAMILY_IDS = [case.name for case in CASES]

REFUSES_NAN = {
    "activation-softmax": r"largest logit of each example contains nan at index",
    "activation-images-softmax": r"largest logit of each example contains nan at index",
    "activation-tokens-softmax": r"largest logit of each example contains nan at index",
}
"""Families that refuse a NaN input, and what their ``ValueError`` says; the others propagate it."""

NAN_CROSSES_THE_CAUSAL_MASK = {
    "attention-causal",
    "transformer_block",
    "transformer_block-leaky_relu-0.2",
}
"""Causal attention computes ``V P`` with a weight of exactly 0 for a masked (later) key, and
``0 · NaN`` is NaN: a NaN in a later token reaches the earlier tokens of its sequence, whose
outputs do not depend on it. Every other sequence stays finite."""

NAN_KEPT_WHERE_DROPPED = {"dropout-training"}
"""Dropout multiplies by its mask, and ``0 · NaN`` is NaN (as in PyTorch's dropout): a NaN the
mask drops stays NaN at its own place, although that output does not depend on it."""


def forward_with(case: FamilyCase, layer: Any, x: np.ndarray, where: tuple[int, ...], value: float):
    changed = x.copy()
    changed[where] = value
    return tbp.nn.FAMILIES[type(layer)].run(layer, changed, case.mode)


@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize("case", CASES, ids=FAMILY_IDS)
def test_a_nan_input_is_refused_or_reaches_exactly_the_outputs_that_depend_on_it(case, where):
    """NaN at the first or the last entry of ``x``: a ValueError that names it, or NaN in every
    output that depends on that entry (those that change when it moves by ±10) and nowhere else;
    forward and backward without a warning (warnings are errors)."""
    rng = np.random.default_rng(0)
    layer, x = case.build(rng, np.float64)
    if x.dtype.kind in "iu":
        pytest.skip("integer ids cannot be NaN")
    index = (0 if where == "first" else -1,) * x.ndim
    if case.name in REFUSES_NAN:
        with pytest.raises(ValueError, match=REFUSES_NAN[case.name]):
            forward_with(case, layer, x, index, np.nan)
        return
    output, cache = forward_with(case, layer, x, index, np.nan)
    unchanged = forward_with(case, layer, x, index, x[index])[0]
    depends = (forward_with(case, layer, x, index, x[index] + 10.0)[0] != unchanged) | (
        forward_with(case, layer, x, index, x[index] - 10.0)[0] != unchanged
    )
    expected = depends.copy()
    if case.name in NAN_CROSSES_THE_CAUSAL_MASK:
        expected[..., index[-1]] = True  # the NaN's whole sequence (batch is the last axis)
    if case.name in NAN_KEPT_WHERE_DROPPED:
        expected[index] = True
    np.testing.assert_array_equal(np.isnan(output), expected)
    tbp.nn.FAMILIES[type(layer)].backward(rng.standard_normal(output.shape), cache)


EMPTY_BATCH_REFUSED = {
    "batchnorm-training": "batch norm in training needs at least 2 values per feature, got 0",
    "batchnorm-images-training": (
        "batch norm in training needs at least 2 values per feature, got 0"
    ),
}
"""Families that refuse a batch of 0 examples, and what their ``ValueError`` says."""


@pytest.mark.parametrize("case", CASES, ids=FAMILY_IDS)
def test_an_empty_batch_works_or_is_refused_clearly(case):
    """A batch of 0: outputs and ``grad_x`` with a batch of 0 and parameter gradients of 0 (a
    sum over no examples), or a ValueError that says why."""
    layer, x = case.build(np.random.default_rng(0), np.float64)
    empty = x[..., :0]  # batch is the last axis in every family
    family = tbp.nn.FAMILIES[type(layer)]
    if case.name in EMPTY_BATCH_REFUSED:
        with pytest.raises(ValueError, match=EMPTY_BATCH_REFUSED[case.name]):
            family.run(layer, empty, case.mode)
        return
    output, cache = family.run(layer, empty, case.mode)
    assert output.shape[-1] == 0 and output.dtype == np.float64
    result = family.backward(np.zeros(output.shape), cache)
    grad_x = result[1] if family.has_parameters else result
    assert grad_x is None if x.dtype.kind in "iu" else grad_x.shape == empty.shape
    if family.has_parameters:
        for name, grad in parameters(result[0]).items():
            assert grad.shape == parameters(layer)[name].shape, name
            np.testing.assert_array_equal(grad, 0.0, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=FAMILY_IDS)
def test_read_only_inputs_parameters_and_gradients_are_not_written_to(case):
    """Every array a family is given, the upstream gradient included, read-only: no in-place
    write (it would raise), nothing changed, and the results bit for bit those of writeable
    copies."""
    rng = np.random.default_rng(0)
    layer, x = case.build(rng, np.float64)
    family = tbp.nn.FAMILIES[type(layer)]
    output, cache = family.run(layer, x, case.mode)
    grad_output = rng.standard_normal(output.shape)
    expected = family.backward(grad_output, cache)

    arrays = [x, grad_output, *parameters(layer).values()]
    before = [array.copy() for array in arrays]
    for array in arrays:
        array.flags.writeable = False
    read_only_output, read_only_cache = family.run(layer, x, case.mode)
    result = family.backward(grad_output, read_only_cache)
    for array, original in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(array, original)
    np.testing.assert_array_equal(read_only_output, output)
    if family.has_parameters:
        for name, grad in parameters(result[0]).items():
            np.testing.assert_array_equal(grad, parameters(expected[0])[name], err_msg=name)
        result, expected = result[1], expected[1]
    if expected is None:  # integer ids: no gradient
        assert result is None
    else:
        np.testing.assert_array_equal(result, expected)
