"""Tests for typedbackprop.nn.network: Dense, forward, backward, loss_and_grads."""

import dataclasses
import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from helpers import assert_close
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

import typedbackprop as tbp

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OUTPUT_AND_LOSS = [
    ("identity", "squared_error"),
    ("sigmoid", "squared_error"),
    ("tanh", "squared_error"),
    ("softmax", "squared_error"),
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "cross_entropy"),
]
COMBINATIONS = list(itertools.product(HIDDEN, OUTPUT_AND_LOSS))

TORCH_ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
    "identity": lambda z: z,
    "softmax": lambda z: torch.softmax(z, dim=0),
}


def make_network(sizes, batch, loss, seed=0, dtype=np.float64):
    """Random layers, inputs and targets that fit ``loss``."""
    rng = np.random.default_rng(seed)
    layers = [
        tbp.Dense(
            rng.normal(size=(n_out, n_in)).astype(dtype), rng.normal(size=n_out).astype(dtype)
        )
        for n_in, n_out in itertools.pairwise(sizes)
    ]
    x = rng.normal(size=(sizes[0], batch)).astype(dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], size=batch)
    elif loss == "binary_cross_entropy":
        y = rng.random((sizes[-1], batch)).astype(dtype)
    else:
        y = rng.normal(size=(sizes[-1], batch)).astype(dtype)
    return layers, x, y


def torch_loss_and_grads(layers, x, y, activation, output_activation, loss):
    """The same network written independently in PyTorch (float64 autograd)."""
    params = [
        (torch.tensor(layer.W, requires_grad=True), torch.tensor(layer.b, requires_grad=True))
        for layer in layers
    ]
    a = torch.tensor(x)
    z = a
    for index, (W, b) in enumerate(params):
        z = W @ a + b[:, None]
        name = output_activation if index == len(params) - 1 else activation
        a = TORCH_ACTIVATIONS[name](z)
    batch = x.shape[1]
    if loss == "cross_entropy":
        value = torch.nn.functional.cross_entropy(z.T, torch.tensor(y), reduction="mean")
    elif loss == "binary_cross_entropy":
        per_element = torch.nn.functional.binary_cross_entropy_with_logits(
            z, torch.tensor(y), reduction="none"
        )
        value = per_element.sum() / batch
    else:
        value = 0.5 * ((a - torch.tensor(y)) ** 2).sum() / batch
    value.backward()
    return value.item(), [(W.grad.numpy(), b.grad.numpy()) for W, b in params]


# --- values by hand -------------------------------------------------------------------------


def test_one_layer_by_hand():
    # z = 2*3 + 1 = 7, L = ½ (7 − 5)² = 2, δ = 2, ∂L/∂W = δ x = 6, ∂L/∂b = δ = 2.
    layers = [tbp.Dense(np.array([[2.0]]), np.array([1.0]))]
    loss, grads = tbp.loss_and_grads(
        layers, np.array([[3.0]]), np.array([[5.0]]), output_activation="identity"
    )
    assert loss == 2.0
    np.testing.assert_array_equal(grads[0].W, [[6.0]])
    np.testing.assert_array_equal(grads[0].b, [2.0])


def test_two_sigmoid_layers_by_hand():
    # a1 = σ(0) = ½; z2 = 2 · ½ = 1; L = ½ (1 − 0)² = ½; δ2 = 1; ∂L/∂W2 = δ2 a1 = ½;
    # ∂L/∂a1 = W2ᵀ δ2 = 2; δ1 = 2 · σ'(0) = 2 · ¼ = ½; ∂L/∂W1 = δ1 x = ½ · 1; ∂L/∂b1 = ½.
    layers = [
        tbp.Dense(np.array([[0.0]]), np.array([0.0])),
        tbp.Dense(np.array([[2.0]]), np.array([0.0])),
    ]
    loss, grads = tbp.loss_and_grads(layers, np.array([[1.0]]), np.array([[0.0]]))
    assert loss == 0.5
    np.testing.assert_array_equal(grads[1].W, [[0.5]])
    np.testing.assert_array_equal(grads[1].b, [1.0])
    np.testing.assert_array_equal(grads[0].W, [[0.5]])
    np.testing.assert_array_equal(grads[0].b, [0.5])


def test_batch_mean_by_hand():
    # Two examples, identity network W = 1, b = 0: residuals 1 and 3, L = (½·1 + ½·9) / 2 = 2.5,
    # ∂L/∂W = (1·1 + 3·2) / 2 = 3.5, ∂L/∂b = (1 + 3) / 2 = 2.
    layers = [tbp.Dense(np.array([[1.0]]), np.array([0.0]))]
    x, y = np.array([[1.0, 2.0]]), np.array([[0.0, -1.0]])
    loss, grads = tbp.loss_and_grads(layers, x, y, activation="identity")
    assert loss == 2.5
    np.testing.assert_array_equal(grads[0].W, [[3.5]])
    np.testing.assert_array_equal(grads[0].b, [2.0])


def test_forward_records_every_layer():
    layers, x, _ = make_network([3, 4, 4, 2], 5, "squared_error")
    caches = tbp.forward(layers, x, "tanh", "identity")
    assert [cache.z.shape for cache in caches] == [(4, 5), (4, 5), (2, 5)]
    assert caches[0].a_prev is x
    np.testing.assert_array_equal(caches[1].a_prev, caches[0].a)
    np.testing.assert_array_equal(caches[0].a, np.tanh(layers[0].W @ x + layers[0].b[:, None]))
    np.testing.assert_array_equal(tbp.predict(layers, x, "tanh", "identity"), caches[-1].a)


# --- against the oracle and the gradient check -----------------------------------------------


@pytest.mark.parametrize(("activation", "output_and_loss"), COMBINATIONS)
def test_every_combination_matches_torch(activation, output_and_loss):
    output_activation, loss = output_and_loss
    layers, x, y = make_network([3, 5, 4, 3], 7, loss, seed=len(activation) + len(loss))
    value, grads = tbp.loss_and_grads(layers, x, y, activation, output_activation, loss)
    expected_value, expected_grads = torch_loss_and_grads(
        layers, x, y, activation, output_activation, loss
    )
    assert abs(value - expected_value) <= 1e-10 * abs(expected_value)
    for grad, (expected_W, expected_b) in zip(grads, expected_grads, strict=True):
        assert_close(grad.W, expected_W)
        assert_close(grad.b, expected_b)


@settings(deadline=None, max_examples=60)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    batch=st.integers(1, 6),
    combination=st.sampled_from(COMBINATIONS),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_architectures_match_torch(sizes, batch, combination, seed):
    activation, (output_activation, loss) = combination
    if output_activation == "softmax" and sizes[-1] < 2:
        sizes[-1] = 2
    layers, x, y = make_network(sizes, batch, loss, seed)
    # Sigmoid, tanh and softmax take their derivatives from the rounded a, as a(1 − a), 1 − a²
    # and a ⊙ (g − aᵀg), in both libraries: where a unit saturates (a within 1e-4 of its
    # bound), that derivative is good to a few units of float64's spacing absolutely, and when
    # every path runs through such a unit (one output, batch 1) neither library can give the
    # other's result to 1e-10 relatively. test_activations and test_softmax cover the saturated
    # tails with that absolute allowance; here such draws are skipped.
    for cache, name in zip(
        tbp.forward(layers, x, activation, output_activation),
        [activation] * (len(layers) - 1) + [output_activation],
        strict=True,
    ):
        if name == "sigmoid":
            assume(np.min(cache.a * (1 - cache.a)) >= 1e-4)
        elif name == "tanh":
            assume(np.min(1 - cache.a**2) >= 1e-4)
        elif name == "softmax":
            assume(np.max(cache.a) <= 1 - 1e-4)
    value, grads = tbp.loss_and_grads(layers, x, y, activation, output_activation, loss)
    expected_value, expected_grads = torch_loss_and_grads(
        layers, x, y, activation, output_activation, loss
    )
    assert abs(value - expected_value) <= 1e-10 * max(abs(expected_value), 1e-300)
    for grad, layer, (expected_W, expected_b) in zip(grads, layers, expected_grads, strict=True):
        assert grad.W.shape == layer.W.shape and grad.b.shape == layer.b.shape
        assert_close(grad.W, expected_W)
        assert_close(grad.b, expected_b)


@pytest.mark.parametrize(("activation", "output_and_loss"), COMBINATIONS)
def test_every_combination_passes_gradcheck(activation, output_and_loss):
    output_activation, loss = output_and_loss
    layers, x, y = make_network([2, 3, 3], 4, loss, seed=3)

    def unpack(params):
        return [tbp.Dense(W, b) for W, b in zip(params[::2], params[1::2], strict=True)]

    def forward(*params):
        return tbp.loss_and_grads(unpack(params), x, y, activation, output_activation, loss)[0]

    def backward(grad_loss, *params):
        _, grads = tbp.loss_and_grads(unpack(params), x, y, activation, output_activation, loss)
        return [grad_loss * array for grad in grads for array in (grad.W, grad.b)]

    params = [array for layer in layers for array in (layer.W, layer.b)]
    # (ReLU's kink at 0: normal draws land within eps = 1e-6 of it with negligible odds.)
    report = tbp.gradcheck(forward, backward, params, names=["W1", "b1", "W2", "b2"])
    assert report.passed, str(report)


# --- dtypes and purity -------------------------------------------------------------------------


@pytest.mark.parametrize(("output_activation", "loss"), OUTPUT_AND_LOSS)
def test_float32_in_float32_out(output_activation, loss):
    layers, x, y = make_network([3, 4, 2], 5, loss, dtype=np.float32)
    value, grads = tbp.loss_and_grads(layers, x, y, "tanh", output_activation, loss)
    assert isinstance(value, float)
    assert all(grad.W.dtype == np.float32 and grad.b.dtype == np.float32 for grad in grads)


def test_callers_arrays_are_not_modified():
    layers, x, y = make_network([3, 4, 2], 5, "squared_error")
    arrays = [x, y] + [array for layer in layers for array in (layer.W, layer.b)]
    copies = [array.copy() for array in arrays]
    for array in arrays:
        array.flags.writeable = False
    tbp.loss_and_grads(layers, x, y, "relu", "sigmoid", "squared_error")
    for array, copy in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(array, copy)


def test_non_contiguous_inputs_give_the_same_result():
    layers, x, y = make_network([3, 4, 2], 5, "squared_error")
    x_strided = np.asfortranarray(x)
    wide = np.zeros((3, 10))
    wide[:, ::2] = x
    expected = tbp.loss_and_grads(layers, x, y)
    for variant in (x_strided, wide[:, ::2]):
        value, grads = tbp.loss_and_grads(layers, variant, y)
        assert value == expected[0]
        for grad, want in zip(grads, expected[1], strict=True):
            np.testing.assert_array_equal(grad.W, want.W)


# --- bad input ---------------------------------------------------------------------------------


def test_batch_first_data_names_the_dimension():
    layers, x, y = make_network([3, 4, 2], 5, "squared_error")
    with pytest.raises(TypeCheckError, match="inp=5") as error:
        tbp.loss_and_grads(layers, x.T, y)
    assert "batch=3" in str(error.value)


@pytest.mark.parametrize("function", [tbp.forward, tbp.predict])
def test_batch_first_x_alone_gets_the_hint_first(function):
    # As loss_and_grads says it: the layout first, then what failed to chain.
    layers, x, _ = make_network([3, 4, 2], 5, "squared_error")
    for _ in range(2):  # a new signature, then a remembered one
        with pytest.raises(ValueError) as error:
            function(layers, x.T)
        assert str(error.value).splitlines() == [
            "x looks batch-first: layer 0 expects inp=3 inputs but x has shape (5, 3); "
            "typedbackprop takes features first, pass x.T",
            "layers do not chain: layer 0 expects inp=3 inputs but x has 5 features "
            "(W of layer 0 has shape (4, 3))",
        ]


def test_layers_that_do_not_chain():
    layers, x, y = make_network([3, 4, 2], 5, "squared_error")
    broken = [layers[0], tbp.Dense(np.ones((2, 3)), np.zeros(2))]
    with pytest.raises(ValueError, match="layer 1 expects inp=3 inputs but layer 0 gives 4"):
        tbp.loss_and_grads(broken, x, y)


def test_empty_network():
    _, x, y = make_network([3, 2], 5, "squared_error")
    with pytest.raises(ValueError, match="at least one layer"):
        tbp.loss_and_grads([], x, y)


def test_targets_with_the_wrong_batch():
    layers, x, y = make_network([3, 4, 2], 5, "squared_error")
    with pytest.raises(TypeCheckError, match="batch=5"):
        tbp.loss_and_grads(layers, x, y[:, :4])


def test_bias_of_the_wrong_length():
    with pytest.raises(TypeCheckError, match="out=4"):
        tbp.Dense(np.ones((4, 3)), np.ones(3))


@pytest.mark.parametrize(
    ("W", "b"),
    [
        (np.ones((4, 3), dtype=np.int64), np.ones(4)),
        (np.ones(4), np.ones(4)),
        (np.ones((4, 3)), np.ones((4, 1))),
    ],
)
def test_dense_refuses_wrong_types_and_ranks(W, b):
    with pytest.raises(TypeCheckError):
        tbp.Dense(W, b)


def test_integer_inputs_are_refused():
    layers, x, y = make_network([3, 2], 5, "squared_error")
    with pytest.raises(TypeCheckError, match=r"argument x: this array has dtype int64"):
        tbp.loss_and_grads(layers, x.astype(np.int64), y)


def test_mixed_precision_is_refused():
    layers, x, y = make_network([3, 2], 5, "squared_error")
    with pytest.raises(TypeError, match="x is float32 but layer 0 has W float64"):
        tbp.loss_and_grads(layers, x.astype(np.float32), y.astype(np.float32))
    with pytest.raises(TypeError, match="x is float64 but y is float32"):
        tbp.loss_and_grads(layers, x, y.astype(np.float32))


@pytest.mark.parametrize("bad_label", [-1, 3, 100])
def test_labels_out_of_range_name_the_label(bad_label):
    layers, x, y = make_network([3, 3], 5, "cross_entropy")
    y[2] = bad_label
    with pytest.raises(ValueError, match=f"label {bad_label} of example 2 is outside \\[0, 3\\)"):
        tbp.loss_and_grads(layers, x, y, output_activation="softmax", loss="cross_entropy")


def test_cross_entropy_needs_integer_labels():
    layers, x, _ = make_network([3, 3], 5, "cross_entropy")
    with pytest.raises(TypeError, match="integer labels"):
        tbp.loss_and_grads(
            layers, x, np.zeros((3, 5)), output_activation="softmax", loss="cross_entropy"
        )


def test_float_losses_need_float_targets():
    layers, x, _ = make_network([3, 3], 5, "squared_error")
    with pytest.raises(TypeError, match="float targets"):
        tbp.loss_and_grads(layers, x, np.zeros(5, dtype=np.int64))


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("activation", "sigmod"), ("output_activation", "relu"), ("loss", "hinge")],
)
def test_unknown_names_are_refused(keyword, value):
    layers, x, y = make_network([3, 2], 5, "squared_error")
    with pytest.raises(TypeError, match=value):
        tbp.loss_and_grads(layers, x, y, **{keyword: value})


@pytest.mark.parametrize(
    ("output_activation", "loss", "needed"),
    [("identity", "binary_cross_entropy", "sigmoid"), ("sigmoid", "cross_entropy", "softmax")],
)
def test_logit_losses_need_their_output_activation(output_activation, loss, needed):
    layers, x, y = make_network([3, 2], 5, loss)
    with pytest.raises(ValueError, match=f"use output_activation='{needed}'"):
        tbp.loss_and_grads(layers, x, y, output_activation=output_activation, loss=loss)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data_is_reported(bad):
    layers, x, y = make_network([3, 2], 5, "squared_error")
    x[1, 3] = bad
    with pytest.raises(ValueError, match=r"x contains .* at index \(1, 3\)"):
        tbp.loss_and_grads(layers, x, y)
    x[1, 3] = 0.0
    y[0, 0] = bad
    with pytest.raises(ValueError, match=r"y contains .* at index \(0, 0\)"):
        tbp.loss_and_grads(layers, x, y)


# --- gradients bound to their layers (checks on) -------------------------------------------------


def reversed_grads(network_backward):
    """``network_backward`` with its list of gradients in the wrong order."""

    def backward(*args, **kwargs):
        grads, grad_x = network_backward(*args, **kwargs)
        return grads[::-1], grad_x

    return backward


def one_grad_short(network_backward):
    def backward(*args, **kwargs):
        grads, grad_x = network_backward(*args, **kwargs)
        return grads[:-1], grad_x

    return backward


# A call whose signature passed before runs vouched for, without this check (nothing in the
# package changes a gradient's shape between two calls of one signature): each test below uses
# sizes of its own, and its corrupted backward meets them first.
GRADIENT_CASES = {
    ("wrong order", "backward"): 11,
    ("wrong order", "loss_and_grads"): 12,
    ("one too few", "backward"): 13,
    ("one too few", "loss_and_grads"): 14,
    ("from the output", "backward"): 15,
    ("from the output", "loss_and_grads"): 16,
}


def call_through(entry, layers, x, y, seed):
    if entry is tbp.backward:
        caches = tbp.forward(layers, x)
        return tbp.backward(layers, caches, np.random.default_rng(seed).normal(size=y.shape))
    return tbp.loss_and_grads(layers, x, y)


@pytest.mark.parametrize("entry", [tbp.backward, tbp.loss_and_grads], ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("case", "corrupt", "message"),
    [
        (
            "wrong order",  # layer 0 gets layer 1's gradient, or an activation's None
            reversed_grads,
            r"layer 0: grad W is float64 \(2, 4\) but W is float64 \(4, 3\)"
            r"|the gradient of layer 0 is a NoneType, not a Dense",
        ),
        ("one too few", one_grad_short, r"\d gradients for \d layers"),
    ],
    ids=["wrong order", "one too few"],
)
def test_gradients_that_do_not_match_the_layers_are_refused(
    entry, case, corrupt, message, monkeypatch
):
    from typedbackprop.nn import network

    batch = GRADIENT_CASES[case, entry.__name__]
    layers, x, y = make_network([3, 4, 2], batch, "squared_error", seed=batch)
    monkeypatch.setattr(network, "network_backward", corrupt(network.network_backward))
    with pytest.raises(TypeError, match=message):
        call_through(entry, layers, x, y, batch)
    monkeypatch.undo()
    grads = call_through(entry, layers, x, y, batch)  # the same call, the real backward: passes
    grads = grads if entry is tbp.backward else grads[1]
    assert [grad.W.shape for grad in grads] == [(4, 3), (2, 4)]


@pytest.mark.parametrize("entry", [tbp.backward, tbp.loss_and_grads], ids=lambda f: f.__name__)
def test_grad_W_built_from_the_output_instead_of_the_input_is_refused(entry, monkeypatch):
    """``δ aᵀ`` instead of ``δ a_prevᵀ``: (out, out), here (4, 4) for the (4, 3) first layer."""
    dense = tbp.nn.FAMILIES[tbp.Dense]

    def from_output(grad_z, cache):
        grads = dense.backward_parameters(grad_z, cache)
        a = cache.W @ cache.a_prev  # the layer's output, not its input
        return tbp.Dense(grad_z @ a.T, grads.b)

    def backward(grad_z, cache):
        return from_output(grad_z, cache), dense.backward(grad_z, cache)[1]

    monkeypatch.setitem(
        tbp.nn.FAMILIES,
        tbp.Dense,
        dataclasses.replace(dense, backward=backward, backward_parameters=from_output),
    )
    batch = GRADIENT_CASES["from the output", entry.__name__]
    layers, x, y = make_network([3, 4, 2], batch, "squared_error", seed=batch)
    with pytest.raises(
        TypeError, match=r"layer 0: grad W is float64 \(4, 4\) but W is float64 \(4, 3\)"
    ):
        call_through(entry, layers, x, y, batch)


def test_loss_and_grads_checks_its_own_slice_of_the_gradients(monkeypatch):
    """Its ``grads[0::2]`` (the dense layers' of dense, activation, dense, ...) is checked too:
    a sequence laid out otherwise would hand back gradients in the wrong order, silently."""
    from typedbackprop.nn import network

    real = network.network_loss_and_grads

    def dense_gradients_swapped(*args, **kwargs):
        value, grads = real(*args, **kwargs)  # checked against the sequence: passes
        grads[0], grads[2] = grads[2], grads[0]
        return value, grads

    layers, x, y = make_network([3, 4, 2], 17, "squared_error", seed=17)
    monkeypatch.setattr(network, "network_loss_and_grads", dense_gradients_swapped)
    with pytest.raises(
        TypeError, match=r"layer 0: grad W is float64 \(2, 4\) but W is float64 \(4, 3\)"
    ):
        tbp.loss_and_grads(layers, x, y)


# --- checks off ----------------------------------------------------------------------------------

CHECKS_OFF_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import typedbackprop as tbp
    from typedbackprop.checking import checked

    def plain(x):
        return x

    assert not tbp.CHECKS_ENABLED
    assert checked(plain) is plain
    assert not hasattr(tbp.nn.affine_forward, "__wrapped__")
    rng = np.random.default_rng(0)
    layers = [tbp.Dense(rng.normal(size=(4, 3)), rng.normal(size=4)),
              tbp.Dense(rng.normal(size=(2, 4)), rng.normal(size=2))]
    x, y = rng.normal(size=(3, 5)), rng.normal(size=(2, 5))
    loss, grads = tbp.loss_and_grads(layers, x, y)
    np.save("{out}", np.concatenate([[loss]] + [g.W.ravel() for g in grads]))
    labels = np.array([0, 1, 5, 0, 1])
    try:
        tbp.loss_and_grads(layers, x, labels, output_activation="softmax", loss="cross_entropy")
        raise SystemExit("an out-of-range label was accepted")
    except ValueError as error:
        assert "label 5 of example 2 is outside [0, 2)" in str(error), error
    try:
        tbp.loss_and_grads(layers, x, y, activation="sigmod")
        raise SystemExit("an unknown activation was accepted")
    except ValueError as error:
        assert "unknown activation 'sigmod'" in str(error), error
    """
)


def test_checks_off_gives_bit_identical_results(tmp_path):
    out = tmp_path / "unchecked.npy"
    environment = dict(os.environ, TYPEDBACKPROP_CHECKS="0")
    subprocess.run(
        [sys.executable, "-c", CHECKS_OFF_SCRIPT.format(out=out)],
        check=True,
        env=environment,
    )
    rng = np.random.default_rng(0)
    layers = [
        tbp.Dense(rng.normal(size=(4, 3)), rng.normal(size=4)),
        tbp.Dense(rng.normal(size=(2, 4)), rng.normal(size=2)),
    ]
    x, y = rng.normal(size=(3, 5)), rng.normal(size=(2, 5))
    loss, grads = tbp.loss_and_grads(layers, x, y)
    np.testing.assert_array_equal(
        np.load(out), np.concatenate([[loss]] + [g.W.ravel() for g in grads])
    )


# --- speed-ups give the same bits --------------------------------------------------------------

LOGIT_LOSSES = [("sigmoid", "binary_cross_entropy"), ("softmax", "cross_entropy")]


def loss_and_grads_through_the_output_activation(layers, x, y, loss):
    """The step as it was: forward through every layer, the loss from the last cache's ``z``."""
    _, caches = tbp.network_forward(layers, x)
    value, delta = tbp.nn.LOSSES[loss].function(caches[-1].z, y)
    grads, _ = tbp.network_backward(layers[:-1], caches[:-1], delta)
    return value, [*grads, None]


@pytest.mark.parametrize(("output_activation", "loss"), LOGIT_LOSSES)
@pytest.mark.parametrize("activation", HIDDEN)
@pytest.mark.parametrize("seed", [0, 1])
def test_a_loss_from_logits_gives_the_bits_of_running_the_output_activation(
    activation, output_activation, loss, seed
):
    layers, x, y = make_network([3, 6, 4], 7, loss, seed=seed)
    sequence = tbp.mlp(layers, activation, output_activation)
    value, grads = tbp.network_loss_and_grads(sequence, x, y, loss)
    want_value, want_grads = loss_and_grads_through_the_output_activation(sequence, x, y, loss)
    assert value == want_value
    assert len(grads) == len(want_grads)
    for grad, want in zip(grads, want_grads, strict=True):
        if want is None:
            assert grad is None
            continue
        np.testing.assert_array_equal(grad.W, want.W)
        np.testing.assert_array_equal(grad.b, want.b)


@pytest.mark.parametrize(("output_activation", "loss"), LOGIT_LOSSES)
def test_a_loss_from_logits_does_not_run_the_output_activation(
    output_activation, loss, monkeypatch
):
    """Its output would be thrown away: the forward pass stops at the logits."""

    def refuse(z, slope):
        raise AssertionError(f"{output_activation} ran")

    entry = tbp.nn.ACTIVATIONS[output_activation]
    monkeypatch.setitem(
        tbp.nn.ACTIVATIONS, output_activation, dataclasses.replace(entry, forward=refuse)
    )
    layers, x, y = make_network([3, 6, 4], 7, loss)
    value, grads = tbp.loss_and_grads(
        layers, x, y, activation="relu", output_activation=output_activation, loss=loss
    )
    assert np.isfinite(value) and len(grads) == 2


@pytest.mark.parametrize("activation", HIDDEN)
def test_an_identity_output_layer_is_skipped_bit_for_bit(activation):
    """``loss_and_grads`` leaves the identity out of the sequence it runs: same bits as running
    ``Activation("identity")`` forward and backward."""
    layers, x, y = make_network([3, 5, 4, 2], 6, "squared_error", seed=4)
    value, grads = tbp.loss_and_grads(layers, x, y, activation=activation)
    sequence = tbp.mlp(layers, activation, "identity")
    assert sequence[-1] == tbp.Activation("identity")
    want_value, want_grads = tbp.network_loss_and_grads(sequence, x, y, "squared_error")
    assert value == want_value
    for grad, want in zip(grads, want_grads[0::2], strict=True):
        np.testing.assert_array_equal(grad.W, want.W)
        np.testing.assert_array_equal(grad.b, want.b)


def test_a_loss_from_logits_updates_the_states_as_running_every_layer_did():
    """Batch norm's running statistics, in training, below a softmax that is no longer run."""
    rng = np.random.default_rng(5)
    layers = [
        tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
        tbp.nn.BatchNorm(rng.standard_normal(4), rng.standard_normal(4), momentum=0.25),
        tbp.Activation("relu"),
        tbp.Dense(rng.standard_normal((3, 4)), rng.standard_normal(3)),
        tbp.Activation("softmax"),
    ]
    x, labels = rng.standard_normal((3, 6)), np.array([0, 2, 1, 1, 0, 2])
    states, want_states = tbp.initial_states(layers), tbp.initial_states(layers)
    value, grads = tbp.network_loss_and_grads(layers, x, labels, "cross_entropy", states=states)
    _, caches = tbp.network_forward(layers, x, tbp.Mode(training=True), want_states)
    want_value, delta = tbp.nn.LOSSES["cross_entropy"].function(caches[-1].z, labels)
    want_grads, _ = tbp.network_backward(layers[:-1], caches[:-1], delta)
    assert value == want_value
    assert grads[-1] is None and len(grads) == len(layers)
    for grad, want in zip(grads[:-1], want_grads, strict=True):
        for name, array in tbp.nn.families.parameters(want).items():
            np.testing.assert_array_equal(getattr(grad, name), array)
    assert states[1] is not None and states[1] is not want_states[1]
    np.testing.assert_array_equal(states[1].mean, want_states[1].mean)
    np.testing.assert_array_equal(states[1].var, want_states[1].var)
    with pytest.raises(ValueError, match="5 layers but 4 states"):
        tbp.network_loss_and_grads(layers, x, labels, "cross_entropy", states=states[:-1])
