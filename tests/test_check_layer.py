"""Tests for typedbackprop.check_layer and the hypothesis strategy typedbackprop.strategies.

check_layer runs on every layer family the package ships (one row per family in FAMILIES), and
each of its checks is shown to fail on a layer with the bug that check exists for, with a report
that names the input and the dimension at fault.
"""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float

import typedbackprop as tbp
from typedbackprop import Array, checked
from typedbackprop.gradcheck import shapes
from typedbackprop.strategies import layer_inputs


def activation_pair(forward, backward):
    """An activation in the classic form: ``backward(grad_a, z)``, with ``a`` recomputed."""
    return forward, lambda grad_a, z: backward(grad_a, z, forward(z))


FAMILIES = {
    "affine": (
        tbp.affine_forward,
        lambda grad_z, W, b, a_prev: tbp.affine_backward(grad_z, W, a_prev),
    ),
    "sigmoid": activation_pair(tbp.sigmoid_forward, tbp.sigmoid_backward),
    "tanh": activation_pair(tbp.tanh_forward, tbp.tanh_backward),
    "relu": activation_pair(tbp.relu_forward, tbp.relu_backward),
    "leaky_relu": activation_pair(tbp.leaky_relu_forward, tbp.leaky_relu_backward),
    "identity": activation_pair(tbp.identity_forward, tbp.identity_backward),
    "softmax": activation_pair(tbp.softmax_forward, tbp.softmax_backward),
    "affine, batch first": (
        tbp.affine_forward_batch_first,
        lambda grad_z, W, b, a_prev: tbp.affine_backward_batch_first(grad_z, W, a_prev),
    ),
}
"""Every layer family the package ships, as (forward, backward) in the classic form."""

CHECKS = ["annotations", "gradients", "linearity", "purity", "determinism", "float32"]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_the_package_ships_passes_every_check(family):
    forward, backward = FAMILIES[family]
    report = tbp.check_layer(forward, backward)
    assert report.passed, str(report)
    assert [check.name for check in report.checks] == CHECKS
    sizes = dict(report.sizes)
    assert len(set(sizes.values())) == len(sizes) and 1 not in sizes.values()
    assert report.gradients is not None and report.gradients.method == "full"


@pytest.mark.parametrize("family", ["affine", "relu", "softmax"])
def test_large_layers_are_checked_in_fast_mode_with_samples(family):
    forward, backward = FAMILIES[family]
    sizes = {"batch": 150, "features": 140, "classes": 140, "in": 130, "out": 120}
    report = tbp.check_layer(forward, backward, sizes=sizes)
    assert report.passed, str(report)
    assert report.gradients.method == "fast+sampled"
    assert "random projections and 32 random entries per input match" in str(report)


def test_the_report_lists_each_check_and_the_sizes():
    report = tbp.check_layer(*FAMILIES["affine"])
    text = str(report)
    assert text.splitlines()[0] == "check_layer affine_forward with out=4, in=3, batch=5 (seed 0)"
    assert 'W: Float[Array, "out in"] with out=4, in=3' in text
    for name in CHECKS:
        assert any(line.startswith(name) and line.endswith("  ok") for line in text.splitlines())
    assert text.endswith("\npassed")


def test_given_sizes_are_kept_and_the_others_stay_distinct():
    report = tbp.check_layer(*FAMILIES["affine"], sizes={"batch": 3})
    assert dict(report.sizes) == {"batch": 3, "out": 4, "in": 5}


# --- each check fails on the bug it exists for --------------------------------------------------


def test_a_transposed_gradient_is_named_with_its_dimensions():
    def grad_W_transposed(grad_z, W, b, a_prev):
        grad_W, grad_b, grad_a_prev = tbp.affine_backward(grad_z, W, a_prev)
        return grad_W.T, grad_b, grad_a_prev

    with pytest.raises(tbp.LayerCheckError) as caught:
        tbp.check_layer(tbp.affine_forward, grad_W_transposed)
    (check,) = caught.value.report.checks
    assert check.name == "annotations" and not check.passed
    assert check.detail == (
        'gradient for W has shape (3, 4) (in=3, out=4), but W: Float[Array, "out in"] with '
        "out=4, in=3: its axes are permuted (a transpose missing or extra)"
    )


def test_a_bias_gradient_not_summed_over_batch_is_named():
    def grad_b_not_summed(grad_z, W, b, a_prev):
        grad_W, _, grad_a_prev = tbp.affine_backward(grad_z, W, a_prev)
        return grad_W, grad_z, grad_a_prev

    report = tbp.check_layer(tbp.affine_forward, grad_b_not_summed, raise_exception=False)
    (check,) = report.checks
    assert check.detail == (
        'gradient for b has shape (4, 5) (out=4, batch=5), but b: Float[Array, "out"] with '
        "out=4: it keeps batch, which a sum over that axis would remove"
    )


def test_a_checked_backward_that_refuses_its_own_result_is_reported():
    @checked
    def softplus_backward(
        grad_a: Float[Array, "features batch"], z: Float[Array, "features batch"]
    ) -> Float[Array, "features batch"]:
        return (grad_a * tbp.sigmoid_forward(z)).T  # the bug: a transpose

    @checked
    def softplus_forward(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
        return np.logaddexp(0.0, z)

    report = tbp.check_layer(softplus_forward, softplus_backward, raise_exception=False)
    (check,) = report.checks
    assert check.detail.startswith("backward raised TypeCheckError:")
    assert "features=4" in check.detail and "batch=3" in check.detail


def test_a_wrong_derivative_is_located_with_its_dimension_names():
    def sigmoid_prime_at_a(grad_a, z):
        a = tbp.sigmoid_forward(z)
        s = tbp.sigmoid_forward(a)  # the bug: σ'(a) where σ'(z) belongs
        return grad_a * s * (1 - s)

    report = tbp.check_layer(tbp.sigmoid_forward, sigmoid_prime_at_a, raise_exception=False)
    gradients = report.checks[1]
    assert gradients.name == "gradients" and not gradients.passed
    assert gradients.detail.startswith("gradient for z is wrong: worst entry z[features=")
    assert ", batch=" in gradients.detail
    assert "FAILED" in str(report) and "d out[" in str(report)  # the table is shown
    assert [check.passed for check in report.checks] == [True, False, True, True, True, True]


def test_a_backward_not_linear_in_grad_output_fails_although_unit_vectors_pass():
    # An extra term (Σg)² − Σg² vanishes for every unit vector, so the gradient check, which
    # calls backward with unit vectors, passes; random upstream gradients expose it.
    def with_a_quadratic_term(grad_a, z):
        extra = (grad_a.sum() ** 2 - (grad_a**2).sum()) * z
        return tbp.tanh_backward(grad_a, z, tbp.tanh_forward(z)) + extra

    report = tbp.check_layer(tbp.tanh_forward, with_a_quadratic_term, raise_exception=False)
    verdicts = {check.name: check.passed for check in report.checks}
    assert verdicts["gradients"] and not verdicts["linearity"]
    linearity = report.checks[2]
    assert linearity.detail.startswith("gradient for z is not linear in grad_output:")
    assert "at z[features=" in linearity.detail


def test_a_backward_that_writes_into_grad_output_fails_purity():
    def relu_backward_in_place(grad_a, z):
        grad_a[z <= 0] = 0.0  # the bug: the caller's upstream gradient is overwritten
        return grad_a

    report = tbp.check_layer(tbp.relu_forward, relu_backward_in_place, raise_exception=False)
    purity = report.checks[3]
    assert purity.detail == "backward modified grad_output in place"
    assert report.checks[1].passed  # the values are right: only purity can tell


def test_a_forward_that_writes_into_its_input_fails_purity():
    def clip_in_place(z):
        np.clip(z, -1.0, 1.0, out=z)
        return np.tanh(z)

    clip_in_place.__annotations__ = tbp.tanh_forward.__annotations__
    report = tbp.check_layer(
        clip_in_place, lambda g, z: g * (1 - np.tanh(z) ** 2), raise_exception=False
    )
    purity = report.checks[3]
    assert "forward modified its input z in place" in purity.detail


def test_a_nondeterministic_backward_fails_determinism():
    noise = np.random.default_rng(0)

    def noisy(grad_a, z):
        return grad_a * (1 - np.tanh(z) ** 2) + noise.normal(scale=1e-14, size=z.shape)

    report = tbp.check_layer(tbp.tanh_forward, noisy, raise_exception=False)
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

    report = tbp.check_layer(tbp.identity_forward, backward_promotes, raise_exception=False)
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
        tbp.check_layer(tbp.cross_entropy, lambda g, z, labels: g)


def test_annotations_can_be_given_for_a_wrapped_layer():
    # A thin adapter for a layer in another form: forward takes the arrays, the annotations
    # come from elsewhere (here, affine_forward's own), as a record-form layer would give them.
    def forward(*arrays):
        return tbp.affine_forward(*arrays)

    def backward(grad_z, W, b, a_prev):
        return tbp.affine_backward(grad_z, W, a_prev)

    annotations = [
        ("W", Float[Array, "out in"]),
        ("b", Float[Array, " out"]),
        ("a_prev", Float[Array, "in batch"]),
    ]
    report = tbp.check_layer(forward, backward, annotations=annotations)
    assert report.passed and dict(report.sizes) == {"out": 4, "in": 3, "batch": 5}


def test_a_layer_in_the_record_form_runs_through_a_thin_adapter():
    # dense_forward(layer, x) -> (z, cache) and dense_backward(grad_z, cache) -> (grads,
    # grad_x): the adapter passes the record's arrays and x as inputs, and their annotations.
    import typing

    hints = typing.get_type_hints(tbp.Dense, include_extras=True)
    annotations = [
        ("W", hints["W"]),
        ("b", hints["b"]),
        ("a_prev", typing.get_type_hints(tbp.dense_forward, include_extras=True)["a_prev"]),
    ]

    def forward(W, b, a_prev):
        return tbp.dense_forward(tbp.Dense(W, b), a_prev)[0]

    def backward(grad_z, W, b, a_prev):
        _, cache = tbp.dense_forward(tbp.Dense(W, b), a_prev)
        grads, grad_a_prev = tbp.dense_backward(grad_z, cache)
        return grads.W, grads.b, grad_a_prev

    report = tbp.check_layer(forward, backward, annotations=annotations)
    assert report.passed and dict(report.sizes) == {"out": 4, "in": 3, "batch": 5}


def test_shape_fault_names_a_missing_dimension():
    (spec,) = shapes.array_specs(lambda z: z, [("z", Float[Array, "features batch"])])
    message = shapes.shape_fault(spec, {"features": 4, "batch": 3}, (4,))
    assert message.endswith("dimension batch is missing")


# --- the hypothesis strategy ------------------------------------------------------------------


@settings(deadline=None, max_examples=25)
@given(drawn=layer_inputs(tbp.affine_forward))
def test_the_strategy_draws_distinct_sizes_and_matching_arrays(drawn):
    sizes, (W, b, a_prev) = drawn.sizes, drawn.inputs
    assert sorted(sizes) == ["batch", "in", "out"] and len(set(sizes.values())) == 3
    assert W.shape == (sizes["out"], sizes["in"]) and b.shape == (sizes["out"],)
    assert a_prev.shape == (sizes["in"], sizes["batch"]) and W.dtype == np.float64
    assert np.all(np.abs(W) <= 2.0)
    # What the strategy is for: a property test of the layer on the drawn inputs.
    assert tbp.gradcheck(*FAMILIES["affine"], [W, b, a_prev]).passed


@settings(deadline=None, max_examples=10)
@given(drawn=layer_inputs(tbp.softmax_forward, sizes={"batch": 1}, elements=st.floats(-5, 5)))
def test_the_strategy_keeps_fixed_sizes(drawn):
    (z,) = drawn.inputs
    assert z.shape[1] == 1 and drawn.sizes["batch"] == 1 and drawn.sizes["classes"] != 1


def test_the_strategy_refuses_a_range_without_enough_distinct_sizes():
    with pytest.raises(ValueError, match="3 dimension names .* need distinct sizes"):
        layer_inputs(tbp.affine_forward, min_size=2, max_size=3)


def test_the_package_does_not_import_hypothesis():
    code = "import sys, typedbackprop; assert 'hypothesis' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
