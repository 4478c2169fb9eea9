"""Tests for typedbackprop.optimizers: SGD with momentum and AdamW, against PyTorch's."""

import numpy as np
import pytest
import torch
from helpers import SEEDS, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import typedbackprop as tbp
from typedbackprop.models import transformer
from typedbackprop.nn.gate import Gate
from typedbackprop.nn.lstm import LSTM, LSTMCell
from typedbackprop.nn.tree import leaves, map_leaves, replace_leaves
from typedbackprop.optimizers import SGD, AdamW, AdamWState, SGDState, all_but_weights


def layers_of(rng, dtype=np.float64):
    """A dense layer (out=4, inp=3), an activation (no parameters) and a layer norm (4)."""
    return [
        tbp.Dense(rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal(4).astype(dtype)),
        tbp.Activation("tanh"),
        tbp.nn.LayerNorm(
            rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
        ),
    ]


def an_lstm(rng, dtype=np.float64):
    """A layer made of layers: an LSTM (hidden=2, features=5) whose cell holds four gates."""

    def gate():
        return Gate(*(rng.standard_normal(shape).astype(dtype) for shape in [(2, 5), 2, (2, 2), 2]))

    return LSTM(LSTMCell(gate(), gate(), gate(), gate()))


def arrays(layers):
    return [value for layer in layers for value in leaves(layer).values()]


def field_names(layers):
    """``(layer, name)`` per parameter, ``name`` the last part of its path: what exempt reads."""
    return [(layer, path.rpartition(".")[2]) for layer in layers for path in leaves(layer)]


def owned_copies(layers):
    return [map_leaves(np.copy, layer) for layer in layers]


def gradients(layers, rng):
    """Gradients that depend on the parameters (a quadratic pull towards 0.3) plus noise: the
    optimizers' state and their parameters both shape the next step."""

    def pull(value):
        return 2.0 * (value - 0.3) + rng.standard_normal(value.shape).astype(value.dtype)

    return [map_leaves(pull, layer) if leaves(layer) else None for layer in layers]


def run_ours(optimizer, layers, steps, seed):
    rng = np.random.default_rng(seed)
    state = optimizer.init(layers)
    for _ in range(steps):
        layers, state = optimizer.step(layers, gradients(layers, rng), state)
    return layers, state


def run_torch(make, layers, steps, seed):
    """The same run with a torch.optim optimizer; the gradients come from the same rule."""
    rng = np.random.default_rng(seed)
    leaves = [torch.tensor(value, requires_grad=True) for value in arrays(layers)]
    optimizer = make(leaves)
    for _ in range(steps):
        current = [leaf.detach().numpy() for leaf in leaves]
        grads = iter(arrays([g for g in gradients(rebuild(layers, current), rng) if g is not None]))
        for leaf in leaves:
            leaf.grad = torch.tensor(next(grads))
        optimizer.step()
    return [leaf.detach().numpy() for leaf in leaves]


def rebuild(layers, values):
    values = iter(values)
    return [
        replace_leaves(layer, {path: next(values) for path in leaves(layer)}) for layer in layers
    ]


# --- values by hand ---------------------------------------------------------------------------


def test_sgd_with_momentum_by_hand():
    # θ = 1, g = 2, η = 0.1, μ = 0.9: v = −0.2, θ = 0.8; then v = 0.9 · (−0.2) − 0.2 = −0.38.
    layers = [tbp.nn.LayerNorm(np.array([1.0]), np.array([0.0]))]
    grads = [tbp.nn.LayerNorm(np.array([2.0]), np.array([0.0]))]
    optimizer = SGD(learning_rate=0.1, momentum=0.9)
    layers, state = optimizer.step(layers, grads, optimizer.init(layers))
    assert_close(layers[0].gamma, [0.8], rtol=1e-15)
    layers, state = optimizer.step(layers, grads, state)
    assert_close(state.velocities[0].gamma, [-0.38], rtol=1e-15)
    assert_close(layers[0].gamma, [0.42], rtol=1e-15)


def test_sgd_in_place_by_hand():
    # A velocity of 0.5 to start: v = 0.9 · 0.5 − 0.1 · 2 = 0.25, W = 1 + 0.25;
    # v_b = 0.9 · 0 − 0.1 · (−1) = 0.1, b = 0 + 0.1. Written into the arrays given.
    layer = tbp.Dense(np.array([[1.0]]), np.array([0.0]))
    grad = tbp.Dense(np.array([[2.0]]), np.array([-1.0]))
    state = SGDState([tbp.Dense(np.array([[0.5]]), np.array([0.0]))])
    W, velocity = layer.W, state.velocities[0].W
    SGD(learning_rate=0.1, momentum=0.9).step_in_place([layer], [grad], state)
    assert layer.W is W and state.velocities[0].W is velocity  # no new arrays
    assert_close(state.velocities[0].W, [[0.25]], rtol=1e-15)
    assert_close(layer.W, [[1.25]], rtol=1e-15)
    assert_close(state.velocities[0].b, [0.1], rtol=1e-15)
    assert_close(layer.b, [0.1], rtol=1e-15)
    np.testing.assert_array_equal(grad.W, [[2.0]])  # the gradient is only read


def test_adamw_first_step_by_hand():
    # Step 1: m̂ = g and v̂ = g², so θ ← θ(1 − ηλ) − η g/(|g| + eps): about η against the sign
    # of g, whatever its size, after the decay. θ = 1, g = 2, η = 0.1, λ = 0.5.
    layers = [tbp.nn.LayerNorm(np.array([1.0]), np.array([-3.0]))]
    grads = [tbp.nn.LayerNorm(np.array([2.0]), np.array([-1e-3]))]
    optimizer = AdamW(learning_rate=0.1, weight_decay=0.5)
    layers, state = optimizer.step(layers, grads, optimizer.init(layers))
    assert_close(layers[0].gamma, [0.95 - 0.1 * 2.0 / (2.0 + 1e-8)], rtol=1e-15)
    assert_close(layers[0].beta, [-3.0 * 0.95 + 0.1 * 1e-3 / (1e-3 + 1e-8)], rtol=1e-15)
    assert state.step == 1
    assert_close(state.first_moments[0].gamma, [0.1 * 2.0], rtol=1e-15)
    assert_close(state.second_moments[0].gamma, [0.001 * 4.0], rtol=1e-15)


def test_adamw_first_step_by_hand_with_the_bias_exempt():
    # As above with λ = 0.5, but β is exempt: γ decays (× 0.95), β does
    # not, and both take Adam's step.
    layers = [tbp.nn.LayerNorm(np.array([1.0]), np.array([-3.0]))]
    grads = [tbp.nn.LayerNorm(np.array([2.0]), np.array([-1e-3]))]
    optimizer = AdamW(learning_rate=0.1, weight_decay=0.5, exempt={"beta"})
    layers, _ = optimizer.step(layers, grads, optimizer.init(layers))
    assert_close(layers[0].gamma, [0.95 - 0.1 * 2.0 / (2.0 + 1e-8)], rtol=1e-15)
    assert_close(layers[0].beta, [-3.0 + 0.1 * 1e-3 / (1e-3 + 1e-8)], rtol=1e-15)


def test_the_state_is_typed_like_the_parameters(rng):
    layers = layers_of(rng)
    state = AdamW().init(layers)
    for moments in (state.first_moments, state.second_moments):
        assert type(moments[0]) is tbp.Dense and moments[1] is None
        assert type(moments[2]) is tbp.nn.LayerNorm and moments[2].eps == layers[2].eps
        for moment, layer in zip(moments[::2], layers[::2], strict=True):
            for path, value in leaves(layer).items():
                assert leaves(moment)[path].shape == value.shape
                assert not leaves(moment)[path].any()
    assert type(SGD(0.1).init(layers).velocities[0]) is tbp.Dense


# --- against PyTorch --------------------------------------------------------------------------


@settings(deadline=None, max_examples=25)
@given(
    seed=SEEDS,
    learning_rate=st.sampled_from([1e-3, 1e-2, 0.1]),
    betas=st.sampled_from([(0.9, 0.999), (0.8, 0.99), (0.0, 0.5)]),
    weight_decay=st.sampled_from([0.0, 0.01, 0.3]),
    eps=st.sampled_from([1e-8, 1e-3]),
)
def test_adamw_equals_torch_over_fifty_steps(seed, learning_rate, betas, weight_decay, eps):
    layers = layers_of(np.random.default_rng(seed))
    ours, _ = run_ours(
        AdamW(learning_rate, betas[0], betas[1], eps, weight_decay), layers, 50, seed
    )
    theirs = run_torch(
        lambda leaves: torch.optim.AdamW(
            leaves, lr=learning_rate, betas=betas, eps=eps, weight_decay=weight_decay
        ),
        layers,
        50,
        seed,
    )
    for mine, expected in zip(arrays(ours), theirs, strict=True):
        assert_close(mine, expected)


@settings(deadline=None, max_examples=25)
@given(
    seed=SEEDS,
    learning_rate=st.sampled_from([1e-2, 0.1]),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
)
def test_sgd_equals_torch_over_fifty_steps(seed, learning_rate, momentum):
    layers = layers_of(np.random.default_rng(seed))
    ours, _ = run_ours(SGD(learning_rate, momentum), layers, 50, seed)
    theirs = run_torch(
        lambda leaves: torch.optim.SGD(leaves, lr=learning_rate, momentum=momentum),
        layers,
        50,
        seed,
    )
    for mine, expected in zip(arrays(ours), theirs, strict=True):
        assert_close(mine, expected)


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_sgd_in_place_is_its_step_bit_for_bit(rng, momentum):
    # The training loop's step (in place, on arrays it owns) and the functional step: the same
    # arithmetic, so the same bits, over several steps with the velocity built up; a layer made
    # of layers (the LSTM's gates) too.
    layers = [*layers_of(rng), an_lstm(rng)]
    owned = owned_copies(layers)
    optimizer = SGD(0.05, momentum)
    state, owned_state = optimizer.init(layers), optimizer.init(owned)
    for _ in range(5):
        grads = gradients(layers, rng)
        layers, state = optimizer.step(layers, grads, state)
        optimizer.step_in_place(owned, grads, owned_state)
    for mine, expected in zip(arrays(owned), arrays(layers), strict=True):
        np.testing.assert_array_equal(mine, expected)
    velocities = [[v for v in s.velocities if v is not None] for s in (owned_state, state)]
    for mine, expected in zip(arrays(velocities[0]), arrays(velocities[1]), strict=True):
        np.testing.assert_array_equal(mine, expected)


@settings(deadline=None, max_examples=10)
@given(seed=SEEDS, momentum=st.sampled_from([0.0, 0.9]))
def test_sgd_in_place_equals_torch_over_fifty_steps(seed, momentum):
    layers = layers_of(np.random.default_rng(seed))
    owned = owned_copies(layers)
    optimizer = SGD(0.1, momentum)
    state, rng = optimizer.init(owned), np.random.default_rng(seed)
    for _ in range(50):
        optimizer.step_in_place(owned, gradients(owned, rng), state)
    theirs = run_torch(
        lambda leaves: torch.optim.SGD(leaves, lr=0.1, momentum=momentum), layers, 50, seed
    )
    for mine, expected in zip(arrays(owned), theirs, strict=True):
        assert_close(mine, expected)


@pytest.mark.parametrize("which", ["sgd", "adamw", "adamw, the biases exempt"])
def test_a_layer_made_of_layers_has_every_array_stepped_as_torch_does(which, rng):
    # An LSTM's arrays sit two records deep (cell.forget_gate.W_hh): each one is stepped as
    # torch steps the same tensor, over 20 steps; biases exempt by name are found in every gate.
    layers = [*layers_of(rng), an_lstm(rng)]
    exempt = {"b_ih", "b_hh"} if which.endswith("exempt") else set()
    optimizer = SGD(0.1, momentum=0.9) if which == "sgd" else AdamW(0.01, exempt=exempt)

    def theirs(params):
        if which == "sgd":
            return torch.optim.SGD(params, lr=0.1, momentum=0.9)
        spared = [name in exempt for _, name in field_names(layers)]
        return torch.optim.AdamW(
            [
                {"params": [p for p, s in zip(params, spared, strict=True) if not s]},
                {
                    "params": [p for p, s in zip(params, spared, strict=True) if s],
                    "weight_decay": 0.0,
                },
            ],
            lr=0.01,
        )

    ours, state = run_ours(optimizer, layers, 20, seed=3)
    expected = run_torch(theirs, layers, 20, seed=3)
    assert len(arrays(ours)) == len(expected) == 4 + 16
    assert type(ours[-1].cell.output_gate) is Gate
    for mine, wanted in zip(arrays(ours), expected, strict=True):
        assert_close(mine, wanted)
    moments = state.velocities if isinstance(state, SGDState) else state.first_moments
    assert type(moments[-1]) is LSTM and type(moments[-1].cell.input_gate) is Gate


def test_exempt_is_decided_by_the_record_that_holds_the_parameter(rng):
    # A predicate is given the gate that holds cell.forget_gate.b_hh and the field's name, as
    # all_but_weights is given the dense layer and "b"; exempt names match in every gate.
    seen = []

    def exempt(layer, name):
        seen.append((type(layer), name))
        return False

    lstm = an_lstm(rng)
    assert AdamW(exempt=exempt).decays(lstm, "cell.forget_gate.b_hh")
    assert seen == [(Gate, "b_hh")]
    by_name = AdamW(exempt={"b_hh"})
    by_name.init([lstm])  # a name inside the gates is a parameter's name: not refused
    assert not by_name.decays(lstm, "cell.input_gate.b_hh")
    assert by_name.decays(lstm, "cell.input_gate.b_ih")


# --- AdamW's exempt parameters ----------------------------------------------------------------


def a_small_transformer(rng):
    """The model's layers, small: embeddings, a block, a layer norm, keep-last, a dense layer.

    vocab 5, context 7, answer 4, features 6, heads 2, head_dim 3, hidden 8: all different."""
    return transformer(rng, vocab=5, context=7, answer=4, features=6, heads=2, hidden=8)


@settings(deadline=None, max_examples=15)
@given(
    seed=SEEDS,
    learning_rate=st.sampled_from([1e-3, 0.1]),
    weight_decay=st.sampled_from([0.01, 0.3]),
    by=st.sampled_from(["predicate", "names"]),
)
def test_adamw_with_exempt_parameters_equals_torch_with_two_groups(
    seed, learning_rate, weight_decay, by
):
    # PyTorch users exempt biases, norm gains and embedding tables with a second parameter group
    # whose weight_decay is 0: the same run, every parameter at a relative 1e-10, over 20 steps.
    layers = a_small_transformer(np.random.default_rng(seed))
    names = field_names(layers)
    exempt_names = {name for layer, name in names if all_but_weights(layer, name)}
    exempt = all_but_weights if by == "predicate" else exempt_names
    ours, _ = run_ours(
        AdamW(learning_rate, weight_decay=weight_decay, exempt=exempt), layers, 20, seed
    )

    def two_groups(leaves):
        spared = [all_but_weights(layer, name) for layer, name in names]
        return torch.optim.AdamW(
            [
                {"params": [p for p, s in zip(leaves, spared, strict=True) if not s]},
                {
                    "params": [p for p, s in zip(leaves, spared, strict=True) if s],
                    "weight_decay": 0.0,
                },
            ],
            lr=learning_rate,
            weight_decay=weight_decay,
        )

    theirs = run_torch(two_groups, layers, 20, seed)
    for mine, expected in zip(arrays(ours), theirs, strict=True):
        assert_close(mine, expected)
    # Both groups are there, and the exemption is per parameter: each gradient here depends on
    # its own parameter alone, so against a run that decays everything, every weight comes out
    # bit for bit the same and every exempt parameter differs.
    assert {"W", "W_query", "W_up"} <= {n for _, n in names} - exempt_names
    assert {"b", "table", "gamma", "beta", "b_query"} <= exempt_names
    everything, _ = run_ours(AdamW(learning_rate, weight_decay=weight_decay), layers, 20, seed)
    for (layer, name), mine, decayed in zip(names, arrays(ours), arrays(everything), strict=True):
        assert np.array_equal(mine, decayed) != all_but_weights(layer, name), name


def test_all_but_weights_spares_biases_gains_and_tables(rng):
    layers = a_small_transformer(rng) + [tbp.nn.BatchNorm(np.ones(3), np.zeros(3))]
    spared = {name for layer, name in field_names(layers) if all_but_weights(layer, name)}
    decayed = {name for _, name in field_names(layers)} - spared
    assert decayed == {"W", "W_query", "W_key", "W_value", "W_output", "W_up", "W_down"}
    assert spared == {
        "table", "b", "gamma", "beta", "b_query", "b_value", "b_output", "b_up", "b_down",
    }  # fmt: skip


def test_exempt_names_are_a_set_and_a_misspelt_one_is_refused(rng):
    layers = layers_of(rng)
    assert AdamW(exempt="b").exempt == frozenset({"b"})  # one name, not its letters
    assert AdamW(exempt=["b", "gamma"]) == AdamW(exempt={"gamma", "b"})
    assert hash(AdamW(exempt={"b"})) == hash(AdamW(exempt=frozenset({"b"})))
    optimizer = AdamW(exempt={"b"})
    assert optimizer.decays(layers[0], "W") and not optimizer.decays(layers[0], "b")
    message = (
        r"exempt names \['baises'\] name no parameter of these layers; their parameters are "
        r"\['W', 'b', 'beta', 'gamma'\]"
    )
    with pytest.raises(ValueError, match=message):
        AdamW(exempt={"b", "baises"}).init(layers)


# --- purity, dtypes, refusals -----------------------------------------------------------------


@pytest.mark.parametrize("optimizer", [SGD(0.1, momentum=0.9), AdamW(0.01)], ids=["sgd", "adamw"])
def test_a_step_modifies_none_of_its_arguments(optimizer, rng):
    layers = layers_of(rng)
    state = optimizer.init(layers)
    layers, state = optimizer.step(layers, gradients(layers, rng), state)  # a state that is not 0
    grads = gradients(layers, rng)
    frozen = arrays(layers) + arrays([g for g in grads if g is not None])
    states = state.velocities if isinstance(state, SGDState) else state.first_moments
    frozen += arrays([s for s in states if s is not None])
    before = [value.copy() for value in frozen]
    for value in frozen:
        value.flags.writeable = False  # an in-place write raises at once
    optimizer.step(layers, grads, state)
    for value, original in zip(frozen, before, strict=True):
        np.testing.assert_array_equal(value, original)


@pytest.mark.parametrize("optimizer", [SGD(0.1, momentum=0.9), AdamW(0.01)], ids=["sgd", "adamw"])
def test_float32_stays_float32(optimizer, rng):
    layers = layers_of(rng, np.float32)
    stepped, state = run_ours(optimizer, layers, 3, 0)
    assert {value.dtype for value in arrays(stepped)} == {np.dtype(np.float32)}
    moments = state.velocities if isinstance(state, SGDState) else state.second_moments
    assert {value.dtype for value in arrays([m for m in moments if m is not None])} == {
        np.dtype(np.float32)
    }


def test_a_transformer_block_steps_like_any_layer(rng):
    from families import _block

    block, _ = _block(rng, np.float64)
    grads = gradients([block], rng)
    stepped, state = AdamW(0.01).step([block], grads, AdamW(0.01).init([block]))
    assert isinstance(state, AdamWState) and type(state.first_moments[0]) is tbp.nn.TransformerBlock
    assert stepped[0].attention.causal == block.attention.causal
    assert stepped[0].feedforward.activation == block.feedforward.activation
    assert type(state.first_moments[0].attention_norm) is tbp.nn.LayerNorm
    assert len(arrays(stepped)) == len(arrays([block])) == 15


def test_mismatched_gradients_are_refused(rng):
    layers = layers_of(rng)
    grads = gradients(layers, rng)
    optimizer = AdamW()
    state = optimizer.init(layers)
    with pytest.raises(ValueError, match="3 layers but 2"):
        optimizer.step(layers, grads[:2], state)
    with pytest.raises(TypeError, match="layer 2 is a LayerNorm; its gradient is a Dense"):
        optimizer.step(layers, [grads[0], None, grads[0]], state)
    with pytest.raises(ValueError, match="layer 1: a gradient exactly when"):
        optimizer.step(layers, [grads[0], grads[0], grads[2]], state)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SGD(0.0),
        lambda: SGD(0.1, momentum=1.0),
        lambda: AdamW(learning_rate=-1.0),
        lambda: AdamW(beta2=1.0),
        lambda: AdamW(weight_decay=-0.1),
    ],
)
def test_invalid_settings_are_refused(make):
    with pytest.raises(ValueError):
        make()
