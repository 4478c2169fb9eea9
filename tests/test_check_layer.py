"""Tests for typedbackprop.check_layer and the hypothesis strategy typedbackprop.strategies.

check_layer runs on every function the package ships in the classic form and on every layer
family it ships (each row of the one table of families, ``tests/families.py``, through one
adapter from the record form), and each of its checks is shown to fail on a layer with the bug
that check exists for, with a report that names the input and the dimension at fault.
"""

import dataclasses
import inspect
import subprocess
import sys
import typing

import numpy as np
import pytest
from families import CASES
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float

import typedbackprop as tbp
from typedbackprop import Array, checked
from typedbackprop.checking import record_fields
from typedbackprop.gradcheck import shapes
from typedbackprop.nn.families import FAMILIES
from typedbackprop.nn.tree import leaves, replace_leaves
from typedbackprop.strategies import layer_inputs


def activation_pair(forward, backward):
    """An activation in the classic form: ``backward(grad_a, z)``, with ``a`` recomputed."""
    return forward, lambda grad_a, z: backward(grad_a, z, forward(z))


FUNCTIONS = {
    "affine": (
        tbp.nn.affine_forward,
        lambda grad_z, W, b, a_prev: tbp.nn.affine_backward(grad_z, W, a_prev),
    ),
    "sigmoid": activation_pair(tbp.nn.sigmoid_forward, tbp.nn.sigmoid_backward),
    "tanh": activation_pair(tbp.nn.tanh_forward, tbp.nn.tanh_backward),
    "relu": activation_pair(tbp.nn.relu_forward, tbp.nn.relu_backward),
    "leaky_relu": activation_pair(tbp.nn.leaky_relu_forward, tbp.nn.leaky_relu_backward),
    "identity": activation_pair(tbp.nn.identity_forward, tbp.nn.identity_backward),
    "softmax": activation_pair(tbp.nn.softmax_forward, tbp.nn.softmax_backward),
    "gelu": activation_pair(tbp.nn.gelu_forward, tbp.nn.gelu_backward),
    "gelu_tanh": activation_pair(tbp.nn.gelu_tanh_forward, tbp.nn.gelu_tanh_backward),
    "affine, batch first": (
        tbp.nn.affine_forward_batch_first,
        lambda grad_z, W, b, a_prev: tbp.nn.affine_backward_batch_first(grad_z, W, a_prev),
    ),
}
"""The package's functions in the classic form, ``forward(*arrays)`` and
``backward(grad, *arrays)``. Its layer families, records and all, are checked further down, one
run per row of the table of families in ``tests/families.py``."""

CHECKS = ["annotations", "gradients", "linearity", "purity", "determinism", "float32"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_in_the_classic_form_passes_every_check(function):
    forward, backward = FUNCTIONS[function]
    report = tbp.check_layer(forward, backward)
    assert report.passed, str(report)
    assert [check.name for check in report.checks] == CHECKS
    sizes = dict(report.sizes)
    assert len(set(sizes.values())) == len(sizes) and 1 not in sizes.values()
    assert report.gradients is not None and report.gradients.method == "full"


@pytest.mark.parametrize("function", ["affine", "relu", "softmax"])
def test_large_layers_are_checked_in_fast_mode_with_samples(function):
    forward, backward = FUNCTIONS[function]
    sizes = {"batch": 150, "features": 140, "classes": 140, "inp": 130, "out": 120}
    report = tbp.check_layer(forward, backward, sizes=sizes)
    assert report.passed, str(report)
    assert report.gradients.method == "fast+sampled"
    assert "random projections and 32 random entries per input match" in str(report)


def test_the_report_lists_each_check_and_the_sizes():
    report = tbp.check_layer(*FUNCTIONS["affine"])
    text = str(report)
    assert text.splitlines()[0] == "check_layer affine_forward with out=4, inp=3, batch=5 (seed 0)"
    assert 'W: Float[Array, "out inp"] with out=4, inp=3' in text
    for name in CHECKS:
        assert any(line.startswith(name) and line.endswith("  ok") for line in text.splitlines())
    assert text.endswith("\npassed")


def test_given_sizes_are_kept_and_the_others_stay_distinct():
    report = tbp.check_layer(*FUNCTIONS["affine"], sizes={"batch": 3})
    assert dict(report.sizes) == {"batch": 3, "out": 4, "inp": 5}


# --- each check fails on the bug it exists for --------------------------------------------------


def test_a_transposed_gradient_is_named_with_its_dimensions():
    def grad_W_transposed(grad_z, W, b, a_prev):
        grad_W, grad_b, grad_a_prev = tbp.nn.affine_backward(grad_z, W, a_prev)
        return grad_W.T, grad_b, grad_a_prev

    with pytest.raises(tbp.LayerCheckError) as caught:
        tbp.check_layer(tbp.nn.affine_forward, grad_W_transposed)
    (check,) = caught.value.report.checks
    assert check.name == "annotations" and not check.passed
    assert check.detail == (
        'gradient for W has shape (3, 4) (inp=3, out=4), but W: Float[Array, "out inp"] with '
        "out=4, inp=3: its axes are permuted (a transpose missing or extra)"
    )


def test_a_bias_gradient_not_summed_over_batch_is_named():
    def grad_b_not_summed(grad_z, W, b, a_prev):
        grad_W, _, grad_a_prev = tbp.nn.affine_backward(grad_z, W, a_prev)
        return grad_W, grad_z, grad_a_prev

    report = tbp.check_layer(tbp.nn.affine_forward, grad_b_not_summed, raise_exception=False)
    (check,) = report.checks
    assert check.detail == (
        'gradient for b has shape (4, 5) (out=4, batch=5), but b: Float[Array, " out"] with '
        "out=4: it keeps batch, which a sum over that axis would remove"
    )


def test_a_checked_backward_that_refuses_its_own_result_is_reported():
    @checked
    def softplus_backward(
        grad_a: Float[Array, "features batch"], z: Float[Array, "features batch"]
    ) -> Float[Array, "features batch"]:
        return (grad_a * tbp.nn.sigmoid_forward(z)).T  # the bug: a transpose

    @checked
    def softplus_forward(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
        return np.logaddexp(0.0, z)

    report = tbp.check_layer(softplus_forward, softplus_backward, raise_exception=False)
    (check,) = report.checks
    assert check.detail.startswith("backward raised TypeCheckError:")
    assert "features=4" in check.detail and "batch=3" in check.detail


def test_a_numpy_error_in_an_unannotated_backward_names_the_dimensions():
    # grad_a_prev = W @ grad_z, the transpose missing: NumPy refuses the product (inp=3 against
    # out=4) before any gradient exists, and says only "size 4 is different from 3".
    def grad_a_prev_without_transpose(grad_z, W, b, a_prev):
        return grad_z @ a_prev.T, grad_z.sum(axis=1), W @ grad_z

    report = tbp.check_layer(
        tbp.nn.affine_forward, grad_a_prev_without_transpose, raise_exception=False
    )
    (check,) = report.checks
    assert check.name == "annotations" and not check.passed
    lines = check.detail.splitlines()
    assert lines[0].startswith("backward raised ValueError: matmul:")
    assert lines[0].endswith("(size 4 is different from 3)")
    assert lines[1:] == [
        "backward was called with these arrays:",
        "  grad_output: (out=4, batch=5)",
        "  W: (out=4, inp=3)",
        "  b: (out=4)",
        "  a_prev: (inp=3, batch=5)",
        "the product met inp=3 (the left factor's last axis) with out=4 (the right factor's "
        "first axis): a matrix product sums over one dimension both share",
    ]
    text = str(report)
    assert "(size 4 is different from 3)  FAILED\n             backward was called with" in text


def test_a_backward_that_changes_an_input_fails_purity_and_not_the_gradients_check():
    # The gradients are computed before the input is changed, and right: only purity fails,
    # where the gradient check used to blame W (the next call started from the changed a_prev).
    def changes_a_prev_after(grad_z, W, b, a_prev):
        gradients = tbp.nn.affine_backward(grad_z, W, a_prev)
        a_prev[0, 0] = 0.0
        return gradients

    report = tbp.check_layer(tbp.nn.affine_forward, changes_a_prev_after, raise_exception=False)
    verdicts = {check.name: check.passed for check in report.checks}
    assert verdicts == {name: name != "purity" for name in CHECKS}, str(report)
    assert report.checks[3].detail == "backward modified its input a_prev in place"


def test_a_gradient_failure_that_may_follow_from_a_change_in_place_says_so():
    def changes_a_prev_before(grad_z, W, b, a_prev):
        a_prev[0, 0] = 0.0
        return tbp.nn.affine_backward(grad_z, W, a_prev)

    report = tbp.check_layer(tbp.nn.affine_forward, changes_a_prev_before, raise_exception=False)
    gradients, purity = report.checks[1], report.checks[3]
    assert not gradients.passed and not purity.passed
    assert gradients.detail.startswith("gradient for W is wrong: worst entry W[out=")
    assert gradients.detail.endswith(
        "; this may follow from the change in place that purity reports (each call got fresh "
        "copies, but a layer may read what it has changed)"
    )


def test_a_wrong_derivative_is_located_with_its_dimension_names():
    def sigmoid_prime_at_a(grad_a, z):
        a = tbp.nn.sigmoid_forward(z)
        s = tbp.nn.sigmoid_forward(a)  # the bug: σ'(a) where σ'(z) belongs
        return grad_a * s * (1 - s)

    report = tbp.check_layer(tbp.nn.sigmoid_forward, sigmoid_prime_at_a, raise_exception=False)
    gradients = report.checks[1]
    assert gradients.name == "gradients" and not gradients.passed
    assert gradients.detail.startswith("gradient for z is wrong: worst entry z[features=")
    assert ", batch=" in gradients.detail
    assert "FAILED" in str(report) and "d output[" in str(report)  # the table is shown
    assert [check.passed for check in report.checks] == [True, False, True, True, True, True]


def mean_squared_error(
    a: Float[Array, "features batch"], y: Float[Array, "features batch"]
) -> Float[Array, ""]:
    return np.asarray(0.5 * np.sum((a - y) ** 2) / a.shape[1])


def test_a_gradient_off_by_a_dimensions_size_names_that_dimension():
    def without_one_over_batch(grad, a, y):
        return grad * (a - y), grad * (y - a)  # the bug: the loss's 1/batch is missing

    report = tbp.check_layer(mean_squared_error, without_one_over_batch, raise_exception=False)
    gradients = report.checks[1]
    assert not gradients.passed
    assert gradients.detail.splitlines()[1] == "analytic / numerical = 3.000 everywhere: batch = 3"
    lines = str(report).splitlines()
    assert "             analytic / numerical = 3.000 everywhere: batch = 3" in lines
    assert lines.count("FAILED") == 1 and lines[-1] == "FAILED"  # the verdict, said once

    def divided_twice(grad, a, y):
        return grad * (a - y) / 9, grad * (y - a) / 9  # 1/batch squared: no one dimension

    detail = tbp.check_layer(mean_squared_error, divided_twice, raise_exception=False).checks[1]
    assert detail.detail.splitlines()[1] == "analytic / numerical = 0.333 everywhere: 1/batch = 1/3"


def test_inputs_off_by_different_factors_get_a_line_each_and_no_constant_factor_none():
    def a_off_by_features_y_by_minus_one(grad, a, y):
        return grad * (a - y) * 4 / 3, grad * (a - y) / 3  # y's sign flipped

    report = tbp.check_layer(
        mean_squared_error, a_off_by_features_y_by_minus_one, raise_exception=False
    )
    assert report.checks[1].detail.splitlines()[1:] == [
        "a: analytic / numerical = 4.000 everywhere: features = 4",
        "y: analytic / numerical = -1.000 everywhere",
    ]

    def squared(grad, a, y):
        return grad * (a - y) ** 2 / 3, grad * (y - a) / 3  # not a constant factor

    report = tbp.check_layer(mean_squared_error, squared, raise_exception=False)
    assert len(report.checks[1].detail.splitlines()) == 1


def test_a_one_dimension_annotation_keeps_its_leading_space_and_a_repeated_name_is_said_once():
    def square(W: Float[Array, "n n"], b: Float[Array, " n"]) -> Float[Array, " n"]:
        return W @ b

    report = tbp.check_layer(square, lambda grad, W, b: (np.outer(grad, b), W.T @ grad))
    assert report.checks[0].detail == (
        'every gradient carries its input\'s annotation (W: Float[Array, "n n"] with n=4; '
        'b: Float[Array, " n"] with n=4)'
    )


def test_a_backward_not_linear_in_grad_output_fails_although_unit_vectors_pass():
    # An extra term (Σg)² − Σg² vanishes for every unit vector, so the gradient check, which
    # calls backward with unit vectors, passes; random upstream gradients expose it.
    def with_a_quadratic_term(grad_a, z):
        extra = (grad_a.sum() ** 2 - (grad_a**2).sum()) * z
        return tbp.nn.tanh_backward(grad_a, z, tbp.nn.tanh_forward(z)) + extra

    report = tbp.check_layer(tbp.nn.tanh_forward, with_a_quadratic_term, raise_exception=False)
    verdicts = {check.name: check.passed for check in report.checks}
    assert verdicts["gradients"] and not verdicts["linearity"]
    linearity = report.checks[2]
    assert linearity.detail.startswith("gradient for z is not linear in grad_output:")
    assert "at z[features=" in linearity.detail


def test_a_backward_that_writes_into_grad_output_fails_purity():
    def relu_backward_in_place(grad_a, z):
        grad_a[z <= 0] = 0.0  # the bug: the caller's upstream gradient is overwritten
        return grad_a

    report = tbp.check_layer(tbp.nn.relu_forward, relu_backward_in_place, raise_exception=False)
    purity = report.checks[3]
    assert purity.detail == "backward modified grad_output in place"
    assert report.checks[1].passed  # the values are right: only purity can tell


def test_a_forward_that_writes_into_its_input_fails_purity():
    def clip_in_place(z):
        np.clip(z, -1.0, 1.0, out=z)
        return np.tanh(z)

    clip_in_place.__annotations__ = tbp.nn.tanh_forward.__annotations__
    report = tbp.check_layer(
        clip_in_place, lambda g, z: g * (1 - np.tanh(z) ** 2), raise_exception=False
    )
    purity = report.checks[3]
    assert "forward modified its input z in place" in purity.detail


def test_a_nondeterministic_backward_fails_determinism():
    noise = np.random.default_rng(0)

    def noisy(grad_a, z):
        return grad_a * (1 - np.tanh(z) ** 2) + noise.normal(scale=1e-14, size=z.shape)

    report = tbp.check_layer(tbp.nn.tanh_forward, noisy, raise_exception=False)
    determinism = report.checks[4]
    assert not determinism.passed
    assert determinism.detail.startswith("backward is not deterministic for z: two calls differ")


def test_a_layer_that_promotes_float32_fails_naming_forward_or_backward():
    @checked
    def scale_forward(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
        return z * np.float64(2.0)  # the bug: a float64 scalar promotes float32 (NEP 50)

    report = tbp.check_layer(scale_forward, lambda g, z: 2.0 * g, raise_exception=False)
    float32 = report.checks[5]
    assert not float32.passed
    assert float32.detail == "forward turns float32 inputs into float64 (its output)"

    def backward_promotes(grad_a, z):
        return grad_a * np.ones(z.shape)  # float64 ones

    report = tbp.check_layer(tbp.nn.identity_forward, backward_promotes, raise_exception=False)
    assert report.checks[5].detail == "backward turns float32 into float64 (gradient for z)"


# --- kinks: the point is drawn again --------------------------------------------------------


@checked
def distance_from_one(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
    """``|z − 1|``: a kink at 1, where check_layer's inputs (magnitude 0.5 to 1.5) can fall."""
    return np.abs(z - 1.0)


def distance_from_one_backward(grad_a, z):
    return grad_a * np.sign(z - 1.0)


def test_a_point_whose_check_meets_a_kink_is_drawn_again():
    # With eps = 0.05, an entry within 0.05 of 1 straddles the kink: about one input in two
    # (12 entries) has one. Seed 3's first draw does; its second does not.
    report = tbp.check_layer(distance_from_one, distance_from_one_backward, eps=0.05, seed=3)
    assert report.passed and report.redraws == 1
    assert report.checks[1].detail == (
        "every Jacobian entry matches central differences, after 1 new draws of the inputs"
    )
    first_draw = shapes.random_inputs(
        shapes.array_specs(distance_from_one), dict(report.sizes), np.random.default_rng(3)
    )[0]
    assert np.any(np.abs(first_draw - 1.0) < 0.05)  # it did straddle the kink


def test_a_real_error_still_fails_when_the_layer_has_kinks():
    def twice_the_slope(grad_a, z):
        return 2.0 * grad_a * np.sign(z - 1.0)

    report = tbp.check_layer(
        distance_from_one, twice_the_slope, eps=0.05, seed=0, raise_exception=False
    )
    assert not report.checks[1].passed


# --- what check_layer accepts ---------------------------------------------------------------


def test_a_parameter_that_is_not_a_float_array_and_has_no_default_is_refused():
    with pytest.raises(TypeError, match="cross_entropy's parameter labels .* no default"):
        tbp.check_layer(tbp.nn.cross_entropy, lambda g, z, labels: g)


def test_annotations_can_be_given_for_a_wrapped_layer():
    # A thin adapter for a layer in another form: forward takes the arrays, the annotations
    # come from elsewhere (here, affine_forward's own), as a record-form layer would give them.
    def forward(*arrays):
        return tbp.nn.affine_forward(*arrays)

    def backward(grad_z, W, b, a_prev):
        return tbp.nn.affine_backward(grad_z, W, a_prev)

    annotations = [
        ("W", Float[Array, "out inp"]),
        ("b", Float[Array, " out"]),
        ("a_prev", Float[Array, "inp batch"]),
    ]
    report = tbp.check_layer(forward, backward, annotations=annotations)
    assert report.passed and dict(report.sizes) == {"out": 4, "inp": 3, "batch": 5}


def test_a_layer_in_the_record_form_runs_through_a_thin_adapter():
    # dense_forward(layer, x) -> (z, cache) and dense_backward(grad_z, cache) -> (grads,
    # grad_x): the adapter passes the record's arrays and x as inputs, and their annotations.
    import typing

    hints = typing.get_type_hints(tbp.Dense, include_extras=True)
    annotations = [
        ("W", hints["W"]),
        ("b", hints["b"]),
        ("a_prev", typing.get_type_hints(tbp.nn.dense_forward, include_extras=True)["a_prev"]),
    ]

    def forward(W, b, a_prev):
        return tbp.nn.dense_forward(tbp.Dense(W, b), a_prev)[0]

    def backward(grad_z, W, b, a_prev):
        _, cache = tbp.nn.dense_forward(tbp.Dense(W, b), a_prev)
        grads, grad_a_prev = tbp.nn.dense_backward(grad_z, cache)
        return grads.W, grads.b, grad_a_prev

    report = tbp.check_layer(forward, backward, annotations=annotations)
    assert report.passed and dict(report.sizes) == {"out": 4, "inp": 3, "batch": 5}


def test_shape_fault_names_a_missing_dimension():
    (spec,) = shapes.array_specs(lambda z: z, [("z", Float[Array, "features batch"])])
    message = shapes.shape_fault(spec, {"features": 4, "batch": 3}, (4,))
    assert message.endswith("dimension batch is missing")


# --- every layer family in FAMILIES, through one adapter from the record form ----------------
#
# One check_layer run per row of the table of families (tests/families.py), whose rows also
# drive the PyTorch oracle, purity, dtypes and hostile input: a new family is checked here by
# its row there.

CASE = {case.name: case for case in CASES}


def input_hint(forward):
    """The annotation of a family forward's input (``x``, ``a_prev``, ``z``: its second
    parameter, after the layer)."""
    name = list(inspect.signature(forward).parameters)[1]
    return typing.get_type_hints(forward, include_extras=True)[name]


def array_fields(kind, prefix=""):
    """``(path, annotation)`` of every array of a record type, through the records it holds
    (a transformer block's ``attention.W_query``), as :func:`leaves` names them."""
    for name, hint in record_fields(kind):
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            yield from array_fields(hint, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", hint


def record_layer(family, case):
    """``(forward, backward, annotations)`` in check_layer's form for the layer of ``case``.

    The case's built layer gives the record and its settings (every field that is not an
    array: an activation's name, a stride, a count); check_layer draws the arrays. The input is
    drawn by ``case.check_input`` or forward's own annotation, unless it is integer ids: then
    the case's ids are closed over (ids have no gradient, only the table has).
    ``forward(*arrays)`` builds the record from the arrays it is given (its arrays by path, in
    order: :func:`array_fields`) and the built layer's settings, and runs the family's forward
    (``family.run(layer, x, mode)``) on the last array, ``x``. ``backward(grad, *arrays)`` runs
    that forward again for the cache, then the family's ``backward(grad, cache)``, and returns
    the record's gradients path by path, then ``grad_x``. The case's mode draws dropout's mask
    from a generator seeded the same at each call: one fixed mask, as a gradient check needs.
    """
    built, built_x = case.build(np.random.default_rng(0), np.float64)
    fields = list(array_fields(family.record))
    names = [name for name, _ in fields]
    ids = built_x if built_x.dtype.kind in "iu" else None
    x_hint = case.check_input if case.check_input is not None else input_hint(family.forward)

    def layer_and_input(arrays):
        values, x = (arrays, ids) if ids is not None else (arrays[:-1], arrays[-1])
        return replace_leaves(built, dict(zip(names, values, strict=True))), x

    def forward(*arrays):
        layer, x = layer_and_input(arrays)
        return family.run(layer, x, case.mode)[0]

    def backward(grad_output, *arrays):
        layer, x = layer_and_input(arrays)
        _, cache = family.run(layer, x, case.mode)
        gradients = family.backward(grad_output, cache)
        grad_layer, grad_x = gradients if family.has_parameters else (None, gradients)
        grads = [leaves(grad_layer)[name] for name in names]
        return grads if ids is not None else [*grads, grad_x]

    forward.__name__ = family.forward.__name__
    annotations = list(fields) if ids is not None else [*fields, ("x", x_hint)]
    return forward, backward, annotations


def family_case(name):
    """``(family, case)`` for the row ``name`` of the table of families."""
    case = CASE[name]
    return FAMILIES[type(case.build(np.random.default_rng(0), np.float64)[0])], case


@pytest.mark.parametrize("name", CASE)
def test_every_layer_family_passes_every_check(name):
    family, case = family_case(name)
    forward, backward, annotations = record_layer(family, case)
    report = tbp.check_layer(forward, backward, annotations=annotations, sizes=case.check_sizes)
    assert report.passed, str(report)
    assert [check.name for check in report.checks] == CHECKS
    drawn = {size for name, size in report.sizes if name not in case.check_sizes}
    assert len(drawn) == len(report.sizes) - len(case.check_sizes) and 1 not in drawn
    # Every input's gradient was compared, and none is a 0 against 0 that shows nothing.
    assert report.gradients.method == "full"
    assert all(argument.checked and not argument.nothing_to_compare
               for argument in report.gradients.arguments)  # fmt: skip


def test_the_adapter_keeps_the_rows_settings_and_its_training_mode():
    # What a row varies reaches check_layer: the row's stride, and dropout's training mask.
    family, case = family_case("conv2d-stride2-padding1")
    forward, _, annotations = record_layer(family, case)
    arrays = [np.ones((4, 3, 3, 2)), np.zeros(4), np.ones((3, 7, 8, 6))]
    assert [name for name, _ in annotations] == ["W", "b", "x"]
    assert forward(*arrays).shape == (4, 4, 5, 6)  # stride 2, padding 1: a 4×5 output
    family, case = family_case("dropout-training")
    forward, _, _ = record_layer(family, case)
    dropped = forward(np.ones((3, 4)))
    assert set(np.unique(dropped)) == {0.0, 2.0}  # kept values scaled by 1 / (1 − 0.5)
    np.testing.assert_array_equal(forward(np.ones((3, 4))), dropped)  # one mask every call


def test_a_large_layer_of_a_family_is_checked_in_fast_mode_with_samples():
    family, case = family_case("conv2d-stride1-padding0")
    sizes = {"kernel_h": 3, "kernel_w": 2, "height": 12, "width": 10, "in_channels": 8,
             "out_channels": 6, "batch": 16}  # fmt: skip
    forward, backward, annotations = record_layer(family, case)
    report = tbp.check_layer(forward, backward, annotations=annotations, sizes=sizes)
    assert report.passed, str(report)
    assert report.gradients.method == "fast+sampled"


def test_the_adapter_checks_the_table_of_an_embedding_not_its_ids():
    _, _, annotations = record_layer(*family_case("embedding"))
    assert [name for name, _ in annotations] == ["table"]


def test_a_family_with_a_wrong_backward_fails_through_the_adapter(monkeypatch):
    # The adapter is not a pass-through that passes everything: a bias gradient off by a
    # factor fails the gradients check, naming the record's field and its dimension.
    family = FAMILIES[tbp.Dense]
    right = family.backward

    def grad_b_halved(grad_z, cache):
        grads, grad_a_prev = right(grad_z, cache)
        return tbp.Dense(grads.W, grads.b / 2), grad_a_prev

    wrong = dataclasses.replace(family, backward=grad_b_halved)
    forward, backward, annotations = record_layer(wrong, CASE["dense"])
    report = tbp.check_layer(forward, backward, annotations=annotations, raise_exception=False)
    gradients = report.checks[1]
    assert not gradients.passed
    assert gradients.detail.startswith("gradient for b is wrong: worst entry b[out=")


# --- sizes the layer constrains ---------------------------------------------------------------


def test_a_forward_that_refuses_the_drawn_sizes_is_reported_with_the_sizes():
    # conv2d's kernel must fit in its input; the distinct sizes drawn give kernel_w=6 and
    # width=2. The error says so, by dimension, and what to pass.
    forward, backward, annotations = record_layer(*family_case("conv2d-stride1-padding0"))
    with pytest.raises(ValueError) as caught:
        tbp.check_layer(forward, backward, annotations=annotations)
    message = str(caught.value)
    assert message.startswith(
        "check_layer drew inputs with out_channels=4, in_channels=3, kernel_h=5, kernel_w=6, "
        "height=7, width=2, batch=8, and conv2d_forward refused them: ValueError: a window of 6 "
        "does not fit in an input of 2"
    )
    assert (
        "\nsizes in this message, by the dimension check_layer drew them for: 6 is kernel_w, "
        "2 is width\n" in message
    )
    assert message.endswith("check_layer(..., sizes={...}) with a size for each dimension the "
                            "constraint involves")  # fmt: skip
    assert isinstance(caught.value.__cause__, ValueError)


def test_a_size_below_1_is_refused():
    with pytest.raises(ValueError, match="sizes gives batch=0; a size is a whole number"):
        tbp.check_layer(*FUNCTIONS["affine"], sizes={"batch": 0})
    with pytest.raises(ValueError, match="sizes gives out=2.5; a size is a whole number"):
        tbp.check_layer(*FUNCTIONS["affine"], sizes={"out": 2.5})


# --- the hypothesis strategy ------------------------------------------------------------------


@settings(deadline=None, max_examples=25)
@given(drawn=layer_inputs(tbp.nn.affine_forward))
def test_the_strategy_draws_distinct_sizes_and_matching_arrays(drawn):
    sizes, (W, b, a_prev) = drawn.sizes, drawn.inputs
    assert sorted(sizes) == ["batch", "inp", "out"] and len(set(sizes.values())) == 3
    assert W.shape == (sizes["out"], sizes["inp"]) and b.shape == (sizes["out"],)
    assert a_prev.shape == (sizes["inp"], sizes["batch"]) and W.dtype == np.float64
    assert np.all(np.abs(W) <= 2.0)
    # What the strategy is for: a property test of the layer on the drawn inputs.
    assert tbp.gradcheck(*FUNCTIONS["affine"], [W, b, a_prev]).passed


@settings(deadline=None, max_examples=10)
@given(drawn=layer_inputs(tbp.nn.softmax_forward, sizes={"batch": 1}, elements=st.floats(-5, 5)))
def test_the_strategy_keeps_fixed_sizes(drawn):
    (z,) = drawn.inputs
    assert z.shape[1] == 1 and drawn.sizes["batch"] == 1 and drawn.sizes["classes"] != 1


def test_the_strategy_refuses_a_range_without_enough_distinct_sizes():
    with pytest.raises(ValueError, match="3 dimension names .* need distinct sizes"):
        layer_inputs(tbp.nn.affine_forward, min_size=2, max_size=3)


def test_the_package_does_not_import_hypothesis():
    code = "import sys, typedbackprop; assert 'hypothesis' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
