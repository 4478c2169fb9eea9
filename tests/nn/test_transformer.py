"""Tests for typedbackprop.nn.transformer: the per-token feed-forward network and the block."""

import dataclasses
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone, vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError
from sequence_helpers import distinct_sizes, leaves, with_leaves
from test_attention import PARAMETERS, random_attention

import typedbackprop as tbp
from typedbackprop.explain.text import Names
from typedbackprop.explain.transformer import (
    feedforward_backward_rows,
    feedforward_forward_rows,
    transformer_block_backward_rows,
    transformer_block_forward_rows,
)
from typedbackprop.nn.attention import Attention, attention_forward
from typedbackprop.nn.layernorm import LayerNorm, layernorm_forward
from typedbackprop.nn.transformer import (
    FeedForward,
    TransformerBlock,
    feedforward_backward,
    feedforward_forward,
    transformer_block_backward,
    transformer_block_forward,
)


def random_block(
    rng, features, heads, head_dim, hidden, causal, activation="gelu", dtype=np.float64, eps=1e-5
):
    def norm():
        return LayerNorm(
            (1.0 + 0.3 * rng.standard_normal(features)).astype(dtype),
            (0.3 * rng.standard_normal(features)).astype(dtype),
            eps,
        )

    def normal(*shape, fan_in):
        return (rng.standard_normal(shape) / math.sqrt(fan_in)).astype(dtype)

    feedforward = FeedForward(
        normal(hidden, features, fan_in=features),
        normal(hidden, fan_in=4),
        normal(features, hidden, fan_in=hidden),
        normal(features, fan_in=4),
        activation,
    )
    attention = random_attention(rng, features, heads, head_dim, causal, dtype)
    return TransformerBlock(norm(), attention, norm(), feedforward)


@st.composite
def blocks(draw, max_size=5, eps=1e-5):
    """``(block, x, grad_y)``: features, heads, head_dim, hidden, seq, batch all different.

    At least three features: over two, layer norm's x̂ is ±1 whatever the input, and the
    gradients through it vanish but for rounding noise; over one, x̂ is 0."""
    sizes = draw(distinct_sizes(6, low=2, high=max_size + 5))
    sizes.sort(key=lambda size: size == 2)  # 2 is never the number of features
    features, heads, head_dim, hidden, seq, batch = sizes
    rng = np.random.default_rng(draw(SEEDS))
    block = random_block(
        rng,
        features,
        heads,
        head_dim,
        hidden,
        causal=draw(st.booleans()),
        activation=draw(st.sampled_from(["gelu", "gelu_tanh", "tanh"])),
        eps=eps,
    )
    shape = (features, seq, batch)
    # Features spread over [−2, 2] under the noise: a token whose features (nearly) coincide
    # has a (nearly) zero variance, where layer norm curves too sharply for a central
    # difference with step 1e−6 to be accurate to 1e−7.
    spread = np.linspace(-2.0, 2.0, features)[:, np.newaxis, np.newaxis]
    return block, spread + rng.standard_normal(shape), rng.standard_normal(shape)


# --- the PyTorch oracle, batch first -----------------------------------------------------------

TORCH_ACTIVATIONS = {
    "gelu": lambda z, slope: F.gelu(z),
    "gelu_tanh": lambda z, slope: F.gelu(z, approximate="tanh"),
    "tanh": lambda z, slope: torch.tanh(z),
    "leaky_relu": lambda z, slope: F.leaky_relu(z, slope),
}


def torch_block(block, x, grad_y):
    """The block in PyTorch on ``(batch, seq, features)``: ``F.layer_norm``,
    ``F.scaled_dot_product_attention``, ``F.linear``; the result and every gradient."""
    paths = [path for path, _ in leaves(block)]

    def run(x, *arrays):
        p = dict(zip(paths, arrays, strict=True))
        tokens = x.permute(2, 1, 0)
        features = tokens.shape[-1]

        def norm(h, name):
            gamma, beta = p[f"{name}.gamma"], p[f"{name}.beta"]
            return F.layer_norm(h, (features,), gamma, beta, getattr(block, name).eps)

        def project(h, which):
            projected = torch.einsum("hdf,bsf->bhsd", p[f"attention.W_{which}"], h)
            if which == "key":
                return projected
            return projected + p[f"attention.b_{which}"][None, :, None, :]

        h = norm(tokens, "attention_norm")
        attended = F.scaled_dot_product_attention(
            project(h, "query"),
            project(h, "key"),
            project(h, "value"),
            is_causal=block.attention.causal,
        )
        merged = torch.einsum("fhd,bhsd->bsf", p["attention.W_output"], attended)
        h = tokens + merged + p["attention.b_output"]
        normed = norm(h, "feedforward_norm")
        hidden = F.linear(normed, p["feedforward.W_up"], p["feedforward.b_up"])
        ff = block.feedforward
        activated = TORCH_ACTIVATIONS[ff.activation](hidden, ff.slope)
        y = h + F.linear(activated, p["feedforward.W_down"], p["feedforward.b_down"])
        return y.permute(2, 1, 0)

    arrays = [x] + [array for _, array in leaves(block)]
    y, grads = vjp(run, arrays, grad_y)
    return y, grads[0], dict(zip(paths, grads[1:], strict=True))


# --- values by hand ---------------------------------------------------------------------------


def test_feedforward_by_hand():
    # features=1, hidden=2, the identity: y = W_down (W_up x + b_up) + b_down
    # = [1, −1] ([2, 3] x + [1, 0]) + 0.5 = −x + 1.5, at every token.
    layer = FeedForward(
        np.array([[2.0], [3.0]]),
        np.array([1.0, 0.0]),
        np.array([[1.0, -1.0]]),
        np.array([0.5]),
        "identity",
    )
    x = np.array([[[1.0, 2.0], [3.0, -1.0], [0.0, 4.0]]])  # features=1, seq=3, batch=2
    y, cache = feedforward_forward(layer, x)
    np.testing.assert_array_equal(y, 1.5 - x)
    grads, grad_x = feedforward_backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(grad_x, -np.ones_like(x))
    np.testing.assert_array_equal(grads.b_down, [6.0])  # six tokens
    np.testing.assert_array_equal(grads.W_up, [[x.sum()], [-x.sum()]])


@pytest.mark.parametrize("slope", [0.5, 2.0**-7])
def test_feedforward_with_a_leaky_relu_slope_by_hand(slope):
    # features=1, hidden=2: z = [2x + 1, 3x], y = a_0 − a_1 + ½. At x = −1, z = [−1, −3] is
    # negative, a = slope · z, y = 2 slope + ½; at x = 1, z = [3, 3] and y = ½ whatever the slope.
    # Each slope is a power of 2, so 2 slope, 3 slope and their difference are exact in floating
    # point, whatever the order of the sums (0.01 gave 2 · 0.01 − 3 · 0.01 = −0.009999999999999998
    # or −0.01 by the BLAS's order); 2⁻⁷ is a small slope near the default 0.01.
    layer = FeedForward(
        np.array([[2.0], [3.0]]),
        np.array([1.0, 0.0]),
        np.array([[1.0, -1.0]]),
        np.array([0.5]),
        "leaky_relu",
        slope,
    )
    x = np.array([[[-1.0, 1.0]]])  # features=1, seq=1, batch=2
    y, cache = feedforward_forward(layer, x)
    np.testing.assert_array_equal(y, [[[2 * slope + 0.5, 0.5]]])
    # ∂L/∂y = 1: ∂L/∂a = W_downᵀ 1 = [1, −1], ∂L/∂z = slope · [1, −1] at x = −1 and [1, −1] at
    # x = 1; ∂L/∂x = W_upᵀ ∂L/∂z = 2 − 3 = −1, times slope at x = −1.
    grads, grad_x = feedforward_backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(grad_x, [[[-slope, -1.0]]])
    np.testing.assert_array_equal(grads.b_up, [slope + 1.0, -slope - 1.0])
    assert (grads.activation, grads.slope) == ("leaky_relu", slope)


def with_feedforward(block, **settings):
    """``block`` with its feed-forward network's ``settings`` (or arrays) changed."""
    return dataclasses.replace(
        block, feedforward=dataclasses.replace(block.feedforward, **settings)
    )


def test_the_block_is_its_parts_forwards_on_two_residual_paths(rng):
    # The block holds its four parts' records and no setting of its own (causal, the
    # activation, its slope and each eps are the parts'); its forward is theirs, composed by
    # hand here, bit for bit, and its backward gives each part's gradient in a part's record.
    block = random_block(rng, 4, 2, 3, 5, causal=True, activation="leaky_relu")
    block = with_feedforward(block, slope=0.3)
    assert [field.name for field in dataclasses.fields(block)] == [
        "attention_norm", "attention", "feedforward_norm", "feedforward",
    ]  # fmt: skip
    x = rng.standard_normal((4, 3, 2))  # features=4, seq=3, batch=2
    normed, _ = layernorm_forward(block.attention_norm, x)
    h = x + attention_forward(block.attention, normed)[0]
    normed, _ = layernorm_forward(block.feedforward_norm, h)
    expected = h + feedforward_forward(block.feedforward, normed)[0]
    y, cache = transformer_block_forward(block, x)
    np.testing.assert_array_equal(y, expected)
    assert cache.feedforward.layer.slope == 0.3 and cache.attention.layer.causal
    grads, _ = transformer_block_backward(rng.standard_normal(y.shape), cache)
    assert type(grads) is TransformerBlock
    assert [type(part) for part in (grads.attention_norm, grads.attention)] == [
        LayerNorm, Attention,
    ]  # fmt: skip
    assert (grads.feedforward.activation, grads.feedforward.slope) == ("leaky_relu", 0.3)
    assert [path for path, _ in leaves(grads)] == [path for path, _ in leaves(block)]


def test_a_block_whose_sublayers_output_constants_adds_them_to_every_token(rng):
    # W_output = 0 in both sub-layers: attention adds b_output, the network its own b_output,
    # whatever the input; the gradient flows along the residual path alone.
    block = random_block(rng, 4, 2, 3, 5, causal=True)
    attention = tbp.nn.Attention(
        **{name: getattr(block.attention, name) for name in PARAMETERS if name != "W_output"},
        W_output=np.zeros((4, 2, 3)),
        causal=True,
    )
    ff = block.feedforward
    feedforward = FeedForward(ff.W_up, ff.b_up, np.zeros((4, 5)), ff.b_down)
    block = TransformerBlock(block.attention_norm, attention, block.feedforward_norm, feedforward)
    x, grad_y = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    y, cache = transformer_block_forward(block, x)
    shift = (attention.b_output + feedforward.b_down)[:, None, None]
    assert_close(y, x + shift, rtol=1e-15)
    grads, grad_x = transformer_block_backward(grad_y, cache)
    np.testing.assert_array_equal(grad_x, grad_y)
    np.testing.assert_array_equal(grads.attention.b_output, grad_y.sum(axis=(1, 2)))
    np.testing.assert_array_equal(grads.attention.W_query, np.zeros((2, 3, 4)))


# --- gradient checks --------------------------------------------------------------------------


# eps = 0.1 bounds each layer norm's rstd by √10: the second norm's input can have a token
# whose features nearly coincide, where with eps = 1e−5 the function curves too sharply for a
# central difference to be accurate to 1e−7 (the oracle test below uses eps = 1e−5).
@settings(deadline=None, max_examples=6)
@given(case=blocks(max_size=2, eps=0.1))
def test_transformer_block_passes_gradcheck(case):
    block, x, _ = case
    arrays = [array for _, array in leaves(block)]

    def forward(x, *arrays):
        return transformer_block_forward(with_leaves(block, list(arrays)), x)[0]

    def backward(grad_y, x, *arrays):
        _, cache = transformer_block_forward(with_leaves(block, list(arrays)), x)
        grads, grad_x = transformer_block_backward(grad_y, cache)
        return [grad_x] + [array for _, array in leaves(grads)]

    report = tbp.gradcheck(
        forward, backward, [x, *arrays], names=["x"] + [p for p, _ in leaves(block)]
    )
    assert report.passed, report


@settings(deadline=None, max_examples=15)
@given(case=blocks(max_size=3))
def test_feedforward_passes_gradcheck(case):
    block, x, _ = case
    layer = block.feedforward
    arrays = [array for _, array in leaves(layer)]

    def backward(grad_y, x, *arrays):
        _, cache = feedforward_forward(with_leaves(layer, list(arrays)), x)
        grads, grad_x = feedforward_backward(grad_y, cache)
        return [grad_x] + [array for _, array in leaves(grads)]

    report = tbp.gradcheck(
        lambda x, *arrays: feedforward_forward(with_leaves(layer, list(arrays)), x)[0],
        backward,
        [x, *arrays],
        names=["x", "W_up", "b_up", "W_down", "b_down"],
    )
    assert report.passed, report


# --- against PyTorch --------------------------------------------------------------------------


def assert_block_matches_torch(block, x, grad_y):
    """The block's output, ∂L/∂x and every parameter's gradient equal PyTorch's autograd."""
    y, grad_x, grads = torch_block(block, x, grad_y)
    ours, cache = transformer_block_forward(block, x)
    assert_close(ours, y)
    ours_grads, ours_grad_x = transformer_block_backward(grad_y, cache)
    assert_close(ours_grad_x, grad_x)
    for path, value in leaves(ours_grads):
        assert_close(value, grads[path])
    return ours_grads, cache


@settings(deadline=None, max_examples=40)
@given(case=blocks())
def test_transformer_block_matches_torch(case):
    block, x, grad_y = case
    ours_grads, _ = assert_block_matches_torch(block, x, grad_y)
    assert ours_grads.attention.causal == block.attention.causal
    assert ours_grads.attention_norm.eps == block.attention_norm.eps
    assert ours_grads.feedforward.activation == block.feedforward.activation


@settings(deadline=None, max_examples=20)
@given(case=blocks(), slope=st.sampled_from([0.2, -0.3, 1.5]))
def test_a_leaky_relu_slope_of_the_block_matches_torch_and_is_read(case, slope):
    block, x, grad_y = case
    block = with_feedforward(block, activation="leaky_relu", slope=slope)
    # Hidden unit 0's bias is lowered by 1 more than its pre-activation's largest value, so that
    # unit is negative (by about 1) at every token, whatever the draw: the slope is read.
    _, cache = transformer_block_forward(block, x)
    b_up = block.feedforward.b_up.copy()
    b_up[0] -= cache.feedforward.z[0].max() + 1.0
    block = with_feedforward(block, b_up=b_up)
    ours_grads, cache = assert_block_matches_torch(block, x, grad_y)
    assert ours_grads.feedforward.slope == slope and cache.feedforward.layer.slope == slope
    # Where a hidden pre-activation is negative, the slope is read: another slope, another y.
    assert (cache.feedforward.z[0] < 0).all()
    default, _ = transformer_block_forward(with_feedforward(block, slope=0.01), x)
    ours, _ = transformer_block_forward(block, x)
    assert not np.array_equal(default, ours), "the slope changes the output"


@settings(deadline=None, max_examples=30)
@given(case=blocks())
def test_the_network_runs_blocks_like_any_layer(case):
    block, x, grad_y = case
    output, caches = tbp.network_forward([block, block], x)
    grads, grad_x = tbp.network_backward([block, block], caches, grad_y, input_gradient=True)
    middle, first = transformer_block_forward(block, x)
    expected, second = transformer_block_forward(block, middle)
    assert_close(output, expected, rtol=0.0)
    top, grad_middle = transformer_block_backward(grad_y, second)
    bottom, expected_grad_x = transformer_block_backward(grad_middle, first)
    assert_close(grad_x, expected_grad_x, rtol=0.0)
    for (_, mine), (_, theirs) in zip(leaves(grads[0]), leaves(bottom), strict=True):
        assert_close(mine, theirs, rtol=0.0)


# --- wrong shapes, purity, dtypes --------------------------------------------------------------

# features=5, heads=2, head_dim=3, hidden=7, seq=4, batch=6.
BLOCK = random_block(np.random.default_rng(0), 5, 2, 3, 7, causal=True)
X = np.random.default_rng(1).standard_normal((5, 4, 6))
Y, CACHE = transformer_block_forward(BLOCK, X)
GRAD_Y = np.random.default_rng(2).standard_normal(Y.shape)


@pytest.mark.parametrize(
    ("grad_y", "message"),
    [
        pytest.param(GRAD_Y.transpose(0, 2, 1), "dimension seq is 6", id="seq and batch swapped"),
        pytest.param(GRAD_Y[:4], "dimension features is 4", id="a feature short"),
    ],
)
def test_block_backward_refuses_a_gradient_not_shaped_like_the_output(grad_y, message):
    with pytest.raises(TypeCheckError, match=f"argument grad_y: .*{message}"):
        transformer_block_backward(grad_y, CACHE)
    with pytest.raises(TypeCheckError, match=f"argument grad_y: .*{message}"):
        feedforward_backward(grad_y, CACHE.feedforward)


def test_a_block_whose_sublayers_disagree_on_features_is_refused_when_built():
    narrow = LayerNorm(np.ones(4), np.zeros(4))
    # The message names the part and the field by their path in the block, and the part that
    # bound the size first.
    with pytest.raises(
        TypeCheckError,
        match="attention.W_query: features is 5 here, but attention_norm.gamma bound features=4",
    ):
        TransformerBlock(narrow, BLOCK.attention, BLOCK.feedforward_norm, BLOCK.feedforward)


def test_no_block_function_modifies_its_arguments():
    arrays = [array for _, array in leaves(BLOCK)]
    y = assert_leaves_inputs_alone(
        lambda x, *arrays: transformer_block_forward(with_leaves(BLOCK, list(arrays)), x)[0],
        X,
        *arrays,
    )
    assert_close(y, Y, rtol=1e-15)

    def backward(grad_y, x, *arrays):
        _, cache = transformer_block_forward(with_leaves(BLOCK, list(arrays)), x)
        return transformer_block_backward(grad_y, cache)

    assert_leaves_inputs_alone(backward, GRAD_Y, X, *arrays)


def test_float32_in_float32_out():
    block = random_block(np.random.default_rng(0), 5, 2, 3, 7, causal=True, dtype=np.float32)
    y, cache = transformer_block_forward(block, X.astype(np.float32))
    assert y.dtype == np.float32
    grads, grad_x = transformer_block_backward(GRAD_Y.astype(np.float32), cache)
    assert grad_x.dtype == np.float32
    assert {array.dtype for _, array in leaves(grads)} == {np.dtype(np.float32)}
    assert_close(y, Y, rtol=1e-5)


# --- explain: every operand with its name and its shape ----------------------------------------

# A name explain gives a value (``u3``, ``grad_W_up3``, ``W_down3.T``, ``x2``): letters and
# underscores, then the layer's number.
OPERAND = re.compile(r"\b[A-Za-z_]+\d+(?:\.T)?")


def unshaped_operands(equation: str) -> list[str]:
    """The operands of ``equation`` that are not followed by their shape."""
    return [
        match.group()
        for match in OPERAND.finditer(equation)
        if not re.match(r" \(\d*(, \d+)*,?\)", equation[match.end() :])
    ]


NAMES = Names(3, "x2", "f3", "grad_x2", "grad_f3", first=False)


@pytest.mark.parametrize(("activation", "slope"), [("gelu", 0.01), ("leaky_relu", 0.2)])
def test_feedforward_equations_name_and_shape_every_operand(activation, slope):
    layer = dataclasses.replace(BLOCK.feedforward, activation=activation, slope=slope)
    output, cache = feedforward_forward(layer, X)
    rows = [
        *feedforward_forward_rows(NAMES, layer, cache, output),
        *feedforward_backward_rows(NAMES, layer, cache),
    ]
    for equation, _ in rows:
        assert not unshaped_operands(equation), equation
    text = "\n".join(equation for equation, _ in rows)
    # features=5, hidden=7, seq=4, batch=6
    assert "u3 (7, 4, 6) = W_up3 (7, 5) @ x2 (5, 4, 6) + b_up3 (7,)" in text
    assert "grad_W_up3 (7, 5) = grad_u3 (7, 4, 6) · x2 (5, 4, 6), summed over tokens" in text
    assert "grad_x2 (5, 4, 6) = W_up3.T (5, 7) @ grad_u3 (7, 4, 6)" in text
    if activation == "leaky_relu":  # the slope is part of the equation
        assert "g3 (7, 4, 6) = leaky_relu(u3 (7, 4, 6), slope=0.2)" in text
        assert "leaky_relu'(u3 (7, 4, 6), slope=0.2)" in text
    else:
        assert "g3 (7, 4, 6) = gelu(u3 (7, 4, 6))" in text


def test_the_blocks_own_equations_name_and_shape_every_operand():
    """The residual paths and the feed-forward network; layer norm's and attention's rows are
    their own families' (tests/nn/test_layernorm.py, tests/nn/test_attention.py)."""
    names = Names(3, "p2", "h3", "grad_p2", "grad_h3", first=False)
    forward = transformer_block_forward_rows(names, BLOCK, CACHE, Y)
    backward = transformer_block_backward_rows(names, BLOCK, CACHE)
    feedforward = ("u3 ", "g3 ", "yf3 ", "grad_W_down3 ", "grad_b_down3 ", "grad_u3 ")
    feedforward += ("grad_W_up3 ", "grad_b_up3 ", "grad_xf3 ")
    own = [
        equation
        for equation, note in [*forward, *backward]
        if "residual" in note or equation.startswith(feedforward)
    ]
    assert len(own) == 3 + 2 + 6 + 2  # feed-forward forward, residuals, its backward, residuals
    for equation in own:
        assert not unshaped_operands(equation), equation
    assert "r3 (5, 4, 6) = p2 (5, 4, 6) + ya3 (5, 4, 6)" in own
    assert "h3 (5, 4, 6) = r3 (5, 4, 6) + yf3 (5, 4, 6)" in own
    assert "grad_p2 (5, 4, 6) += grad_r3 (5, 4, 6)" in own
