"""Tests for typedbackprop.nn.attention: scaled dot-product attention, tokens as columns."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone, raises_shape_error, vjp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError
from sequence_helpers import distinct_sizes

import typedbackprop as tbp
from typedbackprop.nn.attention import (
    Attention,
    AttentionCache,
    attention_backward,
    attention_forward,
    attention_scores,
    attention_weights,
    attention_weights_backward,
    causal_mask,
    heads_projection,
    heads_projection_backward,
    merge_heads,
    merge_heads_backward,
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
    weighted_values,
)

PARAMETERS = ["W_query", "b_query", "W_key", "W_value", "b_value", "W_output", "b_output"]


@st.composite
def attention_inputs(draw, max_size=5):
    """``(q, k, v, grad_output)``: heads, batch, head_dim, query and key all different."""
    heads, batch, head_dim, query, key = draw(distinct_sizes(5, high=max_size + 2))
    rng = np.random.default_rng(draw(SEEDS))
    return (
        rng.standard_normal((heads, batch, head_dim, query)),
        rng.standard_normal((heads, batch, head_dim, key)),
        rng.standard_normal((heads, batch, head_dim, key)),
        rng.standard_normal((heads, batch, head_dim, query)),
    )


def random_attention(rng, features, heads, head_dim, causal=False, dtype=np.float64):
    """An :class:`Attention` with standard normal parameters scaled by ``1/√fan_in``."""
    shapes = {
        "W_query": (heads, head_dim, features),
        "b_query": (heads, head_dim),
        "W_key": (heads, head_dim, features),
        "W_value": (heads, head_dim, features),
        "b_value": (heads, head_dim),
        "W_output": (features, heads, head_dim),
        "b_output": (features,),
    }
    arrays = {name: rng.standard_normal(shape) for name, shape in shapes.items()}
    for name in ("W_query", "W_key", "W_value"):
        arrays[name] /= math.sqrt(features)
    arrays["W_output"] /= math.sqrt(heads * head_dim)
    return Attention(**{k: v.astype(dtype) for k, v in arrays.items()}, causal=causal)


@st.composite
def self_attention_cases(draw, max_size=5):
    """``(layer, x, grad_y)``: features, heads, head_dim, seq and batch all different."""
    features, heads, head_dim, seq, batch = draw(distinct_sizes(5, high=max_size + 2))
    rng = np.random.default_rng(draw(SEEDS))
    layer = random_attention(rng, features, heads, head_dim, causal=draw(st.booleans()))
    return (
        layer,
        rng.standard_normal((features, seq, batch)),
        rng.standard_normal((features, seq, batch)),
    )


# --- the PyTorch oracles: batch first, one row per token ----------------------------------------


def torch_sdpa(q, k, v, grad_output, causal):
    """``F.scaled_dot_product_attention`` takes ``(..., tokens, head_dim)``: each of our
    ``"head_dim tokens"`` matrices transposed at the boundary, and the output transposed back."""
    return vjp(
        lambda q, k, v: F.scaled_dot_product_attention(q.mT, k.mT, v.mT, is_causal=causal).mT,
        [q, k, v],
        grad_output,
    )


def torch_explicit_attention(q, k, v, grad_output, causal):
    """The same with PyTorch's matmul and softmax, batch first: ``softmax(Q Kᵀ/√d) V``."""

    def attend(q, k, v):
        queries, keys, values = q.mT, k.mT, v.mT  # (..., tokens, head_dim)
        scores = queries @ keys.mT / math.sqrt(q.shape[-2])  # (..., query, key)
        if causal:
            future = torch.ones(scores.shape[-2:], dtype=torch.bool).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        return (torch.softmax(scores, dim=-1) @ values).mT  # softmax over key, the last axis

    return vjp(attend, [q, k, v], grad_output)


def torch_self_attention(layer, x, grad_y):
    """Multi-head self-attention in PyTorch, batch first: ``(batch, seq, features)``."""

    def attend(x, *parameters):
        p = dict(zip(PARAMETERS, parameters, strict=True))
        tokens = x.permute(2, 1, 0)  # (batch, seq, features)

        def project(W, b=None):  # (batch, heads, seq, head_dim)
            projected = torch.einsum("hdf,bsf->bhsd", W, tokens)
            return projected if b is None else projected + b[None, :, None, :]

        out = F.scaled_dot_product_attention(
            project(p["W_query"], p["b_query"]),
            project(p["W_key"]),  # keys have no bias
            project(p["W_value"], p["b_value"]),
            is_causal=layer.causal,
        )
        y = torch.einsum("fhd,bhsd->bsf", p["W_output"], out) + p["b_output"]
        return y.permute(2, 1, 0)  # back to (features, seq, batch)

    arrays = [x] + [getattr(layer, name) for name in PARAMETERS]
    y, grads = vjp(attend, arrays, grad_y)
    return y, grads[0], dict(zip(PARAMETERS, grads[1:], strict=True))


# --- values by hand ---------------------------------------------------------------------------

# heads=1, batch=1, head_dim=1, query=2, key=3. Query 0 is 1, query 1 is 0; the keys are
# [0, ln 2, ln 3], so query 0's scores are [0, ln 2, ln 3] (√1 = 1) and its weights
# [1, 2, 3]/6; query 1's scores are all 0 and its weights uniform. Values [6, 12, 18].
Q = np.array([1.0, 0.0]).reshape(1, 1, 1, 2)
K = np.array([0.0, math.log(2.0), math.log(3.0)]).reshape(1, 1, 1, 3)
V = np.array([6.0, 12.0, 18.0]).reshape(1, 1, 1, 3)


def test_scores_weights_and_output_by_hand():
    scores = attention_scores(Q, K)
    assert scores.shape == (1, 1, 3, 2)  # key × query
    assert_close(scores[0, 0], [[0.0, 0.0], [math.log(2.0), 0.0], [math.log(3.0), 0.0]], 1e-15)
    weights = attention_weights(scores)
    assert_close(weights[0, 0], [[1 / 6, 1 / 3], [1 / 3, 1 / 3], [1 / 2, 1 / 3]], rtol=1e-15)
    # O = V P: query 0 takes 6/6 + 12/3 + 18/2 = 14; query 1 the mean, 12.
    output, _ = scaled_dot_product_attention(Q, K, V)
    assert_close(output, np.array([14.0, 12.0]).reshape(1, 1, 1, 2), rtol=1e-15)


def test_the_causal_mask_by_hand():
    # Query 0 sees key 0 only: 6. Query 1 sees keys 0 and 1, scores 0 and 0: (6 + 12)/2.
    masked = causal_mask(attention_scores(Q, K))
    assert np.isneginf(masked[0, 0, 1:, 0]).all() and np.isneginf(masked[0, 0, 2, 1])
    output, weights = scaled_dot_product_attention(Q, K, V, causal=True)
    np.testing.assert_array_equal(weights[0, 0], [[1.0, 0.5], [0.0, 0.5], [0.0, 0.0]])
    assert_close(output, np.array([6.0, 9.0]).reshape(1, 1, 1, 2), rtol=1e-15)


def test_the_scores_are_divided_by_the_square_root_of_head_dim():
    # head_dim=4: a query of ones against a key of ones sums to 4, scaled to 4/√4 = 2.
    q, k = (
        np.ones((1, 1, 4, 1)),
        np.concatenate([np.ones((1, 1, 4, 1)), np.zeros((1, 1, 4, 1))], -1),
    )
    np.testing.assert_array_equal(attention_scores(q, k)[0, 0], [[2.0], [0.0]])


def test_backward_by_hand():
    # ∂L/∂V = ∂L/∂O Pᵀ with ∂L/∂O = [1, 2]: [1/6 + 2/3, 1/3 + 2/3, 1/2 + 2/3].
    _, weights = scaled_dot_product_attention(Q, K, V)
    grad_output = np.array([1.0, 2.0]).reshape(1, 1, 1, 2)
    grad_q, grad_k, grad_v = scaled_dot_product_attention_backward(grad_output, Q, K, V, weights)
    assert_close(grad_v, np.array([5 / 6, 1.0, 7 / 6]).reshape(1, 1, 1, 3), rtol=1e-15)
    # Query 1 is 0, so no key's score depends on the keys through it; for query 0,
    # ∂L/∂P = Vᵀ ∂L/∂O = [6, 12, 18], ∂L/∂S = P ⊙ (∂L/∂P − Σ P ∂L/∂P) = P ⊙ ([6, 12, 18] − 14),
    # and ∂L/∂K_k = Q_0 ∂L/∂S_{k0} = [1/6·(−8), 1/3·(−2), 1/2·4].
    assert_close(grad_k, np.array([-8 / 6, -2 / 3, 2.0]).reshape(1, 1, 1, 3), rtol=1e-15)
    # ∂L/∂Q_q = Σ_k K_k ∂L/∂S_{kq}; query 1's ∂L/∂P = 2·[6, 12, 18], mean 24 under its weights.
    grad_q0 = math.log(2.0) * (-2 / 3) + math.log(3.0) * 2.0
    grad_q1 = (math.log(2.0) * (24.0 - 24.0) + math.log(3.0) * (36.0 - 24.0)) / 3
    assert_close(grad_q, np.array([grad_q0, grad_q1]).reshape(1, 1, 1, 2), rtol=1e-15)


@settings(deadline=None, max_examples=40)
@given(case=attention_inputs(), causal=st.booleans())
def test_each_column_of_weights_sums_to_one_over_keys(case, causal):
    q, k, v, _ = case
    _, weights = scaled_dot_product_attention(q, k, v, causal)
    assert_close(weights.sum(axis=-2), np.ones(weights.shape[:2] + weights.shape[-1:]), 1e-15)
    if causal:
        key, query = weights.shape[-2:]
        future = np.arange(key)[:, None] > np.arange(query)[None, :]
        assert (weights[..., future] == 0.0).all()


@settings(deadline=None, max_examples=25)
@given(case=self_attention_cases())
def test_with_the_causal_mask_no_token_reads_a_later_one(case):
    layer, x, _ = case
    layer = dataclasses.replace(layer, causal=True)  # every example tests the mask
    assume(x.shape[1] >= 2)  # a later token to change
    changed = x.copy()
    changed[:, -1, :] += 10.0  # change the last token of every sequence
    before, _ = attention_forward(layer, x)
    after, _ = attention_forward(layer, changed)
    np.testing.assert_array_equal(before[:, :-1], after[:, :-1])
    assert not np.allclose(before[:, -1], after[:, -1])


# --- gradient checks --------------------------------------------------------------------------


@settings(deadline=None, max_examples=20)
@given(case=attention_inputs(max_size=3), causal=st.booleans())
def test_scaled_dot_product_attention_passes_gradcheck(case, causal):
    q, k, v, _ = case

    def backward(grad_output, q, k, v):
        _, weights = scaled_dot_product_attention(q, k, v, causal)
        return scaled_dot_product_attention_backward(grad_output, q, k, v, weights)

    report = tbp.gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, causal)[0], backward, [q, k, v]
    )
    assert report.passed, report


@settings(deadline=None, max_examples=15)
@given(case=self_attention_cases(max_size=3))
def test_attention_family_passes_gradcheck(case):
    layer, x, _ = case

    def forward(x, *parameters):
        return attention_forward(rebuild(layer, parameters), x)[0]

    def backward(grad_y, x, *parameters):
        grads, grad_x = attention_backward(
            grad_y, attention_forward(rebuild(layer, parameters), x)[1]
        )
        return [grad_x] + [getattr(grads, name) for name in PARAMETERS]

    report = tbp.gradcheck(
        forward,
        backward,
        [x] + [getattr(layer, name) for name in PARAMETERS],
        names=["x", *PARAMETERS],
    )
    assert report.passed, report


def rebuild(layer, parameters):
    return Attention(*parameters, causal=layer.causal)


# --- against PyTorch --------------------------------------------------------------------------


@settings(deadline=None, max_examples=60)
@given(case=attention_inputs(), causal=st.booleans())
def test_scaled_dot_product_attention_matches_torch(case, causal):
    q, k, v, grad_output = case
    output, weights = scaled_dot_product_attention(q, k, v, causal)
    ours = scaled_dot_product_attention_backward(grad_output, q, k, v, weights)
    for oracle in (torch_sdpa, torch_explicit_attention):
        expected, expected_grads = oracle(q, k, v, grad_output, causal)
        assert_close(output, expected)
        for mine, theirs in zip(ours, expected_grads, strict=True):
            assert_close(mine, theirs)


@settings(deadline=None, max_examples=50)
@given(case=self_attention_cases())
def test_attention_family_matches_torch(case):
    layer, x, grad_y = case
    y, grad_x, grads = torch_self_attention(layer, x, grad_y)
    ours, cache = attention_forward(layer, x)
    assert_close(ours, y)
    ours_grads, ours_grad_x = attention_backward(grad_y, cache)
    assert_close(ours_grad_x, grad_x)
    for name in PARAMETERS:
        assert_close(getattr(ours_grads, name), grads[name])
    assert ours_grads.causal == layer.causal


@settings(deadline=None, max_examples=30)
@given(case=self_attention_cases())
def test_the_projections_match_torch(case):
    layer, x, _ = case
    rng = np.random.default_rng(x.shape[0])
    heads, head_dim, _ = layer.W_query.shape
    _, seq, batch = x.shape
    grad_projected = rng.standard_normal((heads, batch, head_dim, seq))
    projected, (grad_W, grad_b, grad_x) = vjp(
        lambda W, b, x: torch.einsum("hdf,fsb->hbds", W, x) + b[:, None, :, None],
        [layer.W_query, layer.b_query, x],
        grad_projected,
    )
    assert_close(heads_projection(layer.W_query, layer.b_query, x), projected)
    ours = heads_projection_backward(grad_projected, layer.W_query, x)
    for mine, theirs in zip(ours, (grad_W, grad_b, grad_x), strict=True):
        assert_close(mine, theirs)
    grad_y = rng.standard_normal(x.shape)
    merged, (grad_W, grad_b, grad_output) = vjp(
        lambda W, b, o: torch.einsum("fhd,hbdq->fqb", W, o) + b[:, None, None],
        [layer.W_output, layer.b_output, projected],
        grad_y,
    )
    assert_close(merge_heads(layer.W_output, layer.b_output, projected), merged)
    ours = merge_heads_backward(grad_y, layer.W_output, projected)
    for mine, theirs in zip(ours, (grad_W, grad_b, grad_output), strict=True):
        assert_close(mine, theirs)


@settings(deadline=None, max_examples=30)
@given(case=self_attention_cases())
def test_a_key_bias_would_never_learn(case):
    # Σ over keys of ∂L/∂K is K-independent of the bias: each column of ∂L/∂S sums to 0, so
    # ∂L/∂b_key = Σ_tokens ∂L/∂k = Q Σ_key (∂L/∂S)ᵀ = 0. That is why Attention has no b_key.
    layer, x, grad_y = case
    _, cache = attention_forward(layer, x)
    grad_output = merge_heads_backward(grad_y, layer.W_output, cache.output)[2]
    _, grad_k, grad_v = scaled_dot_product_attention_backward(
        grad_output, cache.q, cache.k, cache.v, cache.weights
    )
    would_be = heads_projection_backward(grad_k, layer.W_key, x)[1]
    scale = np.abs(heads_projection_backward(grad_v, layer.W_value, x)[1]).max()
    assert np.abs(would_be).max() <= 1e-12 * max(scale, 1.0)


# --- wrong shapes -----------------------------------------------------------------------------

# heads=2, batch=3, head_dim=4, query=5, key=6.
RNG = np.random.default_rng(7)
Q_5, K_6, V_6 = (RNG.standard_normal((2, 3, 4, n)) for n in (5, 6, 6))
OUT_5, P_6_5 = scaled_dot_product_attention(Q_5, K_6, V_6)
GRAD_OUT_5 = RNG.standard_normal(OUT_5.shape)


@pytest.mark.parametrize(
    ("call", "bound"),
    [
        pytest.param(
            lambda: attention_scores(Q_5, K_6[:, :, :3]),
            ["heads=2", "batch=3", "head_dim=4", "query=5"],
            id="keys of another head_dim",
        ),
        pytest.param(
            lambda: attention_scores(Q_5.mT, K_6),
            ["heads=2", "batch=3", "head_dim=5", "query=4"],
            id="queries token-first",
        ),
        pytest.param(
            lambda: weighted_values(V_6, P_6_5.mT),
            ["heads=2", "batch=3", "head_dim=4", "key=6"],
            id="weights query × key",
        ),
        pytest.param(
            lambda: attention_weights_backward(GRAD_OUT_5, P_6_5),
            ["heads=2", "batch=3", "key=4", "query=5"],
            id="weights backward: gradient of the output",
        ),
        pytest.param(
            lambda: scaled_dot_product_attention_backward(GRAD_OUT_5, Q_5, K_6, V_6, P_6_5.mT),
            ["heads=2", "batch=3", "head_dim=4", "query=5", "key=6"],
            id="backward: weights transposed",
        ),
        pytest.param(
            lambda: scaled_dot_product_attention(Q_5, K_6, V_6[:, :, :, :5]),
            ["heads=2", "batch=3", "head_dim=4", "query=5", "key=6"],
            id="a value per query, not per key",
        ),
        pytest.param(
            lambda: scaled_dot_product_attention(Q_5, K_6, V_6[:, :2]),
            ["heads=2", "batch=3", "head_dim=4", "query=5", "key=6"],
            id="values of another batch",
        ),
    ],
)
def test_wrong_shapes_raise_naming_the_dimension(call, bound):
    with raises_shape_error(*bound):
        call()


# features=7, heads=2, head_dim=3, seq=4, batch=5.
LAYER = random_attention(np.random.default_rng(3), 7, 2, 3, causal=True)
X = np.random.default_rng(4).standard_normal((7, 4, 5))
Y, CACHE = attention_forward(LAYER, X)
GRAD_Y = np.random.default_rng(5).standard_normal(Y.shape)


@pytest.mark.parametrize(
    ("grad_y", "message"),
    [
        pytest.param(GRAD_Y.transpose(0, 2, 1), "dimension seq is 5", id="seq and batch swapped"),
        pytest.param(GRAD_Y[:6], "dimension features is 6", id="a feature short"),
        pytest.param(GRAD_Y[:, :3], "dimension seq is 3", id="a token short"),
    ],
)
def test_backward_refuses_a_gradient_not_shaped_like_the_output(grad_y, message):
    # The cache binds every dimension; a transposed gradient is refused before any arithmetic.
    with pytest.raises(TypeCheckError, match=f"attention_backward: argument grad_y: .*{message}"):
        attention_backward(grad_y, CACHE)


def test_projections_that_disagree_are_refused_when_the_record_is_built():
    with pytest.raises(TypeCheckError, match="W_key: head_dim is 2 here, .*W_query bound head_dim"):
        Attention(
            **{name: getattr(LAYER, name) for name in PARAMETERS if name != "W_key"},
            W_key=LAYER.W_key[:, :2],
            causal=True,
        )
    with pytest.raises(TypeCheckError, match="argument x: the size of dimension features is 6"):
        attention_forward(LAYER, X[:6])


def test_backward_refuses_a_cache_whose_weights_are_transposed():
    fields = {name: getattr(CACHE, name) for name in AttentionCache.__dataclass_fields__}
    fields["weights"] = CACHE.weights.mT[:, :, :, :3]
    with pytest.raises(TypeCheckError, match="cache.weights"):
        attention_backward(GRAD_Y, AttentionCache(**fields))


# --- purity and dtypes ------------------------------------------------------------------------


def test_no_attention_function_modifies_its_arguments():
    for causal in (False, True):
        output = assert_leaves_inputs_alone(scaled_dot_product_attention, Q_5, K_6, V_6, causal)[0]
        assert_close(output, scaled_dot_product_attention(Q_5, K_6, V_6, causal)[0], rtol=1e-15)
    assert_leaves_inputs_alone(
        scaled_dot_product_attention_backward, GRAD_OUT_5, Q_5, K_6, V_6, P_6_5
    )
    assert_leaves_inputs_alone(attention_weights_backward, RNG.standard_normal(P_6_5.shape), P_6_5)
    assert_leaves_inputs_alone(heads_projection, LAYER.W_query, LAYER.b_query, X)
    parameters = [getattr(LAYER, name) for name in PARAMETERS]
    assert_leaves_inputs_alone(
        lambda x, *parameters: attention_forward(Attention(*parameters, causal=True), x),
        X,
        *parameters,
    )
    cache_arrays = [CACHE.x, CACHE.q, CACHE.k, CACHE.v, CACHE.weights, CACHE.output]
    assert_leaves_inputs_alone(
        lambda grad_y, *arrays: attention_backward(
            grad_y, AttentionCache(Attention(*arrays[:7], causal=True), *arrays[7:])
        ),
        GRAD_Y,
        *parameters,
        *cache_arrays,
    )


def test_float32_in_float32_out():
    layer = random_attention(np.random.default_rng(3), 7, 2, 3, causal=True, dtype=np.float32)
    x = X.astype(np.float32)
    y, cache = attention_forward(layer, x)
    assert y.dtype == np.float32
    assert {cache.q.dtype, cache.k.dtype, cache.v.dtype, cache.weights.dtype} == {
        np.dtype(np.float32)
    }
    grads, grad_x = attention_backward(GRAD_Y.astype(np.float32), cache)
    assert grad_x.dtype == np.float32
    assert {getattr(grads, name).dtype for name in PARAMETERS} == {np.dtype(np.float32)}
    assert_close(y, Y, rtol=1e-5)
