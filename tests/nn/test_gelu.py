"""Tests for typedbackprop.nn.gelu: the error function, Φ, and GELU exact and tanh-approximate."""

import math

import numpy as np
import pytest
import torch.nn.functional as F
from helpers import (
    HUGE,
    SEEDS,
    assert_close,
    assert_leaves_inputs_alone,
    raises_shape_error,
    torch_elementwise,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError
from sequence_helpers import distinct_sizes

import typedbackprop as tbp
from typedbackprop.nn.gelu import (
    erfc,
    gelu_backward,
    gelu_forward,
    gelu_tanh_backward,
    gelu_tanh_forward,
    normal_cdf,
)

FORMS = [
    pytest.param(gelu_forward, gelu_backward, "none", id="exact"),
    pytest.param(gelu_tanh_forward, gelu_tanh_backward, "tanh", id="tanh"),
]


@st.composite
def pre_activations(draw):
    """``(z, grad_a)``, ``features × batch`` of different sizes, z at three scales."""
    features, batch = draw(distinct_sizes(2))
    scale = draw(st.sampled_from([0.3, 1.0, 4.0]))
    rng = np.random.default_rng(draw(SEEDS))
    return rng.standard_normal((features, batch)) * scale, rng.standard_normal((features, batch))


def math_erfc(x: np.ndarray) -> np.ndarray:
    """The C library's ``erfc`` (through ``math``), one entry at a time: the independent one."""
    return np.vectorize(math.erfc, otypes=[np.float64])(x)


# --- the error function -----------------------------------------------------------------------

# Points on either side of each of Cody's range boundaries (0.46875 and 4), and in both tails.
BOUNDARIES = np.array(
    [0.0, 1e-300, 1e-20, 0.1, 0.46875, np.nextafter(0.46875, 1), 1.0, 2.5, 3.999, 4.0,
     np.nextafter(4.0, 5), 5.0, 10.0, 26.0, 27.0, 30.0, 1e10, 1e300, np.inf]
)  # fmt: skip


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_erfc_agrees_with_the_c_library_to_a_few_units_in_the_last_place(sign):
    x = sign * BOUNDARIES
    expected = math_erfc(x)
    ours = erfc(x)
    nonzero = expected > 1e-300  # below that, both sides are subnormal: compare absolutely
    relative = np.abs(ours[nonzero] - expected[nonzero]) / expected[nonzero]
    assert relative.max() <= 4 * np.finfo(np.float64).eps, (x[nonzero], relative)
    assert np.all(np.abs(ours[~nonzero] - expected[~nonzero]) <= 1e-300)


@settings(deadline=None, max_examples=200)
@given(x=st.floats(-26.0, 26.0))  # erfc(26) ≈ 6e−296; beyond 26.5 it is subnormal
def test_erfc_is_accurate_relative_to_its_own_size_everywhere(x):
    expected = math.erfc(x)
    ours = float(erfc(np.array([x]))[0])
    assert abs(ours - expected) <= 4 * np.finfo(np.float64).eps * expected


def test_erfc_of_nan_is_nan_and_float32_stays_float32():
    assert np.isnan(erfc(np.array([np.nan, 1.0]))[0])
    x32 = np.linspace(-5.0, 5.0, 41, dtype=np.float32)
    ours = erfc(x32)
    assert ours.dtype == np.float32
    expected = math_erfc(x32.astype(np.float64))
    assert np.all(np.abs(ours - expected) <= 8 * np.finfo(np.float32).eps * expected)


def test_normal_cdf_keeps_its_relative_accuracy_deep_in_the_lower_tail():
    # Φ(−30) ≈ 4.9e−198: ½(1 + erf(−30/√2)) would be 1 − 1 = 0 in float64. The argument is
    # rounded the same way on both sides: Φ's relative condition number is about z², so the
    # last bit of −z/√2 alone moves Φ(−30) by 1e−13.
    z = np.array([-30.0, -10.0, -1.0, 0.0, 1.0, 10.0])
    expected = 0.5 * math_erfc(z * -math.sqrt(0.5))
    assert_close(normal_cdf(z) / expected, np.ones(6), rtol=1e-15)
    assert normal_cdf(np.array([0.0]))[0] == 0.5


# --- values by hand ---------------------------------------------------------------------------

PHI_1 = 0.5 * math.erfc(-1.0 / math.sqrt(2.0))  # Φ(1) = 0.8413447460685429...
DENSITY_1 = math.exp(-0.5) / math.sqrt(2.0 * math.pi)  # φ(1) = 0.24197072451914337...


def test_exact_gelu_by_hand():
    # a = z Φ(z): Φ(0) = ½, Φ(−1) = 1 − Φ(1); ∂a/∂z = Φ(z) + z φ(z), ½ at 0.
    z = np.array([[0.0, 1.0, -1.0]])
    a = gelu_forward(z)
    assert_close(a, [[0.0, PHI_1, -(1.0 - PHI_1)]], rtol=1e-15)
    assert_close(
        gelu_backward(np.ones((1, 3)), z, a),
        [[0.5, PHI_1 + DENSITY_1, (1.0 - PHI_1) - DENSITY_1]],
        rtol=1e-15,
    )
    assert PHI_1 + DENSITY_1 > 1.0  # the slope overshoots 1 just above 0


def test_tanh_gelu_by_hand():
    # At z = 0: a = 0, slope ½. At z = 1: u = √(2/π) · 1.044715, a = ½ (1 + tanh u).
    u = math.sqrt(2.0 / math.pi) * 1.044715
    t = math.tanh(u)
    slope = 0.5 * (1.0 + t) + 0.5 * (1.0 - t * t) * math.sqrt(2.0 / math.pi) * (1.0 + 3 * 0.044715)
    z = np.array([[0.0], [1.0]])
    a = gelu_tanh_forward(z)
    assert_close(a, [[0.0], [0.5 * (1.0 + t)]], rtol=1e-15)
    assert_close(gelu_tanh_backward(np.array([[2.0], [3.0]]), z, a), [[1.0], [3.0 * slope]], 1e-15)
    assert abs(a[1, 0] - PHI_1) < 5e-4  # the approximation is close to the exact value


@settings(deadline=None, max_examples=100)
@given(z=st.floats(-12.0, 12.0))
def test_tanh_gelu_keeps_its_relative_accuracy_in_the_lower_tail(z):
    # ½ (1 + tanh u) = σ(2u), by the C library's exp, entry by entry, relative to its own size.
    # At z = −6 it is 1e−11: ½ (1 + tanh u) computed so keeps only 5 digits of it. σ(2u)'s
    # relative condition number is about 2|u| in the tail, and u is rounded in another order
    # here (z + c z³, the package's z (1 + c z²)): the bound is a few units of 2|u| ε.
    u = math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)
    expected = z / (1.0 + math.exp(-2.0 * u))
    a = gelu_tanh_forward(np.array([[z]]))[0, 0]
    assert abs(a - expected) <= 4 * np.finfo(np.float64).eps * (1 + 2 * abs(u)) * abs(expected)


# --- gradient checks --------------------------------------------------------------------------


@pytest.mark.parametrize(("forward", "backward", "approximate"), FORMS)
@settings(deadline=None, max_examples=30)
@given(case=pre_activations())
def test_gelu_passes_gradcheck(forward, backward, approximate, case):
    z, _ = case
    report = tbp.gradcheck(forward, lambda grad_a, z: backward(grad_a, z, forward(z)), [z])
    assert report.passed, report


# --- against PyTorch --------------------------------------------------------------------------


@pytest.mark.parametrize(("forward", "backward", "approximate"), FORMS)
@settings(deadline=None, max_examples=60)
@given(case=pre_activations())
def test_gelu_matches_torch(forward, backward, approximate, case):
    z, grad_a = case
    if approximate == "none":
        # PyTorch computes Φ(z) as ½(1 + erf(z/√2)), which cancels in the lower tail (Φ(−6)
        # keeps 7 digits, Φ(−9) none; torch.special.ndtr is 0 from −10): compared with it
        # above −3, and with the C library's erfc everywhere (the test below).
        z = np.maximum(z, -3.0)
    a, grad_z = torch_elementwise(lambda z: F.gelu(z, approximate=approximate), z, grad_a)
    ours = forward(z)
    assert_close(ours, a)
    assert_close(backward(grad_a, z, ours), grad_z)


@settings(deadline=None, max_examples=100)
@given(z=st.floats(-37.0, 37.0))
def test_exact_gelu_matches_the_c_library_in_both_tails(z):
    # a = z Φ(z) and ∂a/∂z = Φ(z) + z φ(z) with math.erfc and math.exp, entry by entry, each
    # relative to its own size (the argument of erfc rounded as the package rounds it).
    cdf = 0.5 * math.erfc(z * -math.sqrt(0.5))
    slope = cdf + z * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    a = gelu_forward(np.array([[z]]))
    grad_z = gelu_backward(np.ones((1, 1)), np.array([[z]]), a)
    assert abs(a[0, 0] - z * cdf) <= 1e-14 * abs(z * cdf)
    assert abs(grad_z[0, 0] - slope) <= 1e-13 * abs(slope)


@pytest.mark.parametrize(("name", "approximate"), [("gelu", "none"), ("gelu_tanh", "tanh")])
def test_the_activation_family_runs_gelu(name, approximate, rng):
    z, grad_a = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    a, grad_z = torch_elementwise(lambda z: F.gelu(z, approximate=approximate), z, grad_a)
    ours, cache = tbp.nn.activation_forward(tbp.Activation(name), z)
    assert_close(ours, a)
    assert_close(tbp.nn.activation_backward(grad_a, cache), grad_z)
    assert (
        tbp.nn.ACTIVATIONS[name].acts_on == "elementwise" and not tbp.nn.ACTIVATIONS[name].has_kink
    )


# --- extreme input, wrong shapes, purity, dtypes ----------------------------------------------


@pytest.mark.parametrize(("forward", "backward", "approximate"), FORMS)
@pytest.mark.parametrize(("dtype", "magnitude"), HUGE)
def test_extreme_pre_activations_give_finite_values_and_gradients(
    forward, backward, approximate, dtype, magnitude
):
    # Warnings are errors: no z² or z³ may overflow on the way to a saturated answer.
    z = np.array([[-magnitude, magnitude, 0.0], [-magnitude / 3, magnitude / 3, 1.0]], dtype=dtype)
    a = forward(z)
    grad_z = backward(np.ones_like(z), z, a)
    assert a.dtype == dtype and grad_z.dtype == dtype
    assert np.isfinite(a).all() and np.isfinite(grad_z).all()
    # saturated: a = 0 and slope 0 far below, a = z and slope 1 far above; slope ½ at 0
    np.testing.assert_array_equal(a[:, :2], np.where(z[:, :2] > 0, z[:, :2], 0.0))
    np.testing.assert_array_equal(grad_z[:, :2], [[0.0, 1.0], [0.0, 1.0]])
    assert grad_z[0, 2] == 0.5


@pytest.mark.parametrize(("forward", "backward", "approximate"), FORMS)
def test_wrong_shapes_raise_naming_the_dimension(forward, backward, approximate):
    z, grad_a = np.zeros((4, 3)), np.ones((4, 3))
    with raises_shape_error("features=4", "batch=3"):
        backward(grad_a, z.T, forward(z))
    with raises_shape_error("features=3", "batch=4"):
        backward(grad_a.T, z, forward(z))
    with pytest.raises(TypeCheckError, match=r"z\b.*\bfeatures batch\b"):
        forward(np.zeros(4))  # one column: z needs features and batch


@pytest.mark.parametrize(("forward", "backward", "approximate"), FORMS)
def test_no_input_is_modified_and_float32_stays_float32(forward, backward, approximate, rng):
    z, grad_a = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    a = assert_leaves_inputs_alone(forward, z)
    assert_leaves_inputs_alone(backward, grad_a, z, a)
    assert_leaves_inputs_alone(erfc, z)
    z32, grad_a32 = z.astype(np.float32), grad_a.astype(np.float32)
    a32 = forward(z32)
    assert a32.dtype == np.float32 and backward(grad_a32, z32, a32).dtype == np.float32
    assert_close(a32, a, rtol=1e-6)
