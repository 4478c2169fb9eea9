"""Tests for typedbackprop.initialize: shapes, scales, seeds, dtypes, bad arguments."""

import numpy as np
import pytest

import typedbackprop as tbp
from typedbackprop.initialize import init_layers


@pytest.mark.parametrize("scheme", ["small_normal", "glorot_uniform", "he_normal"])
def test_initialisations_have_the_right_shapes_and_scales(scheme):
    layers = init_layers([300, 200, 10], np.random.default_rng(0), scheme)
    assert [layer.W.shape for layer in layers] == [(200, 300), (10, 200)]  # W is (out, inp)
    assert [layer.b.shape for layer in layers] == [(200,), (10,)]
    assert all(np.all(layer.b == 0) for layer in layers)
    W = layers[0].W
    expected_std = {
        "small_normal": 0.01,  # the question's 0.01 · N(0, 1)
        "glorot_uniform": np.sqrt(6 / 500) / np.sqrt(3),  # U(−r, r) has std r/√3
        "he_normal": np.sqrt(2 / 300),  # N(0, 2/inp)
    }[scheme]
    assert W.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(W.mean()) < 0.05 * expected_std
    if scheme == "glorot_uniform":
        assert np.abs(W).max() <= np.sqrt(6 / 500)


def test_small_normal_is_the_questions_initialisation():
    layers = init_layers([3, 4, 4, 2], np.random.default_rng(0), "small_normal")
    rng = np.random.default_rng(0)
    for layer, (n_in, n_out) in zip(layers, [(3, 4), (4, 4), (4, 2)], strict=True):
        np.testing.assert_array_equal(layer.W, 0.01 * rng.standard_normal((n_out, n_in)))


def test_he_normal_keeps_relu_activations_at_scale_through_depth():
    rng = np.random.default_rng(0)
    layers = init_layers([256] * 9, rng, "he_normal")
    x = rng.standard_normal((256, 512))
    a = tbp.predict(layers, x, "relu", "identity")
    assert 0.3 < a.std() / x.std() < 3  # no vanishing, no explosion over eight layers


def test_initialisation_is_seeded_and_typed():
    first = init_layers([3, 4], np.random.default_rng(5), dtype=np.float32)
    second = init_layers([3, 4], np.random.default_rng(5), dtype=np.float32)
    np.testing.assert_array_equal(first[0].W, second[0].W)
    assert first[0].W.dtype == first[0].b.dtype == np.float32
    third = init_layers([3, 4], np.random.default_rng(6), dtype=np.float32)
    assert not np.array_equal(first[0].W, third[0].W)


@pytest.mark.parametrize(
    ("sizes", "scheme"), [([3], "he_normal"), ([3, -1], "he_normal"), ([3, 2], "xavier")]
)
def test_bad_initialisation_arguments(sizes, scheme):
    with pytest.raises(ValueError):
        init_layers(sizes, np.random.default_rng(0), scheme)


def test_every_initialisation_is_a_row_of_one_table():
    from typing import get_args

    from typedbackprop.initialize import INITIALIZATIONS, InitName

    assert tuple(INITIALIZATIONS) == get_args(InitName)
    for scheme, draw in INITIALIZATIONS.items():
        layers = init_layers([5, 3], np.random.default_rng(4), scheme)
        np.testing.assert_array_equal(layers[0].W, draw(np.random.default_rng(4), 5, 3))
