"""Multi-head scaled dot-product attention, tokens as columns, and its backward pass.

In the house layout a sequence is ``"features seq batch"``: one feature column per token. For
one head and one sequence, the queries ``Q``, keys ``K`` and values ``V`` are matrices with a
column per token, ``"head_dim query"`` and ``"head_dim key"``, and the three steps of attention
read as matrix algebra with no transpose hidden:

- scores ``S = Kᵀ Q / √head_dim``, ``"key query"``: entry ``(k, q)`` is how well key ``k``
  answers query ``q``;
- weights ``P = softmax(S)`` down each column, over ``key``, exactly as the package's softmax
  runs over the ``classes`` of each example;
- output ``O = V P``, ``"head_dim query"``: each query's column is a weighted mean of the
  value columns.

NumPy's ``matmul`` treats the leading axes of an array as a stack of matrices, so the per-head
arrays put the stack first: ``"heads batch head_dim query"`` is a ``heads × batch`` stack of
``"head_dim query"`` matrices, each in the house layout, and ``k.mT @ q`` is ``Kᵀ Q`` for every
head and sequence at once. The projections in and out of the heads are the affine layer
applied to every token: :func:`heads_projection` and :func:`merge_heads` move between the two
layouts and say so in their annotations.
"""

import math
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import (
    Array,
    checked,
    checked_record,
    runtime_shapes_only,
    static_jaxtyping,
)
from typedbackprop.nn.affine import affine_forward, affine_grad_input, affine_grad_params
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.specs import Spec

__all__ = [
    "Attention",
    "AttentionCache",
    "attention_scores",
    "causal_mask",
    "attention_weights",
    "attention_weights_backward",
    "weighted_values",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_backward",
    "heads_projection",
    "heads_projection_backward",
    "merge_heads",
    "merge_heads_backward",
    "attention_forward",
    "attention_backward",
]


# --- scaled dot-product attention, one "head_dim query" matrix per head and sequence ------------


@checked
@static_jaxtyping("heads batch head_dim query key")
def attention_scores(
    q: Float[Array, "heads batch head_dim query"], k: Float[Array, "heads batch head_dim key"]
) -> Float[Array, "heads batch key query"]:
    """The scaled scores ``S = Kᵀ Q / √head_dim`` of every key for every query.

    Parameters
    ----------
    q
        Queries, one column per query token.
    k
        Keys, one column per key token.

    Returns
    -------
    scores
        Entry ``(k, q)`` of each matrix: key ``k``'s score for query ``q``.

    Notes
    -----
    Index form: ``S_{kq} = (1/√D) Σ_d K_{dk} Q_{dq}`` with ``D = head_dim``, per head and
    sequence. Matrix form: ``S = Kᵀ Q / √D``, ``(key, head_dim) @ (head_dim, query)``. The
    ``1/√D`` keeps the scores' spread independent of ``D``: a sum of ``D`` products of unit
    variance has variance ``D``, and without it the softmax saturates as heads widen.
    """
    return (k.mT @ q) * (1.0 / math.sqrt(q.shape[-2]))


@checked
@runtime_shapes_only("np.where, the whole computation, returns no shape")
def causal_mask(
    scores: Float[Array, "heads batch key query"],
) -> Float[Array, "heads batch key query"]:
    """The scores with every key *after* its query set to ``−∞``, before the softmax.

    Parameters
    ----------
    scores
        Scores from :func:`attention_scores`.

    Returns
    -------
    masked
        ``S_{kq}`` where ``k ≤ q``, ``−∞`` where ``k > q`` (a new array).

    Notes
    -----
    ``exp(−∞) = 0``, so after the softmax a query gives those keys weight exactly 0 and the
    remaining weights still sum to 1. Applied *after* the softmax, zeroing the same entries
    would leave columns that no longer sum to 1. The mask is aligned at the top left, like
    PyTorch's ``is_causal``: key ``k`` is visible to query ``q`` when ``k ≤ q``, so key 0 is
    visible to every query and no column is masked entirely.
    """
    key, query = scores.shape[-2:]
    future = np.arange(key)[:, np.newaxis] > np.arange(query)[np.newaxis, :]  # "key query"
    return np.where(future, -np.inf, scores)


@checked
@static_jaxtyping("heads batch key query")
def attention_weights(
    scores: Float[Array, "heads batch key query"],
) -> Float[Array, "heads batch key query"]:
    """Softmax down each column, over ``key``: how much each query takes from each key.

    Parameters
    ----------
    scores
        Scores (masked or not), one column per query.

    Returns
    -------
    weights
        ``P``: each column sums to 1 over ``key``.

    Notes
    -----
    ``P_{kq} = exp(S_{kq} − m_q) / Σ_k′ exp(S_{k′q} − m_q)``, ``m_q = max_k′ S_{k′q}``: the
    package's softmax over the ``classes`` of each example
    (:func:`~typedbackprop.nn.softmax.softmax_forward`), with keys for classes and queries for
    examples. In the stacked array ``key`` is axis ``-2``, the first axis of each matrix.
    """
    largest: Float[Array, "heads batch 1 query"] = scores.max(axis=-2, keepdims=True)
    weights: Float[Array, "heads batch key query"] = scores - largest
    np.exp(weights, out=weights)
    total: Float[Array, "heads batch 1 query"] = weights.sum(axis=-2, keepdims=True)
    weights /= total
    return weights


@checked
@static_jaxtyping("heads batch key query")
def attention_weights_backward(
    grad_weights: Float[Array, "heads batch key query"],
    weights: Float[Array, "heads batch key query"],
) -> Float[Array, "heads batch key query"]:
    """Gradient through the softmax over keys: ``∂L/∂S = P ⊙ (∂L/∂P − Σ_key P ⊙ ∂L/∂P)``.

    Parameters
    ----------
    grad_weights
        ``∂L/∂P``, the upstream gradient.
    weights
        ``P``, the forward's output.

    Returns
    -------
    grad_scores
        ``∂L/∂S``; zero wherever ``P`` is zero, as at masked entries.

    Notes
    -----
    Index form: ``∂L/∂scores_{hbkq} = Σ_k′ ∂L/∂weights_{hbk′q} J_{hbk′qk}``, upstream gradient
    times the softmax's Jacobian ``J_{hbk′qk} = ∂P_{k′q}/∂S_{kq} = P_{k′q} ([k′ = k] − P_{kq})``
    (per head and sequence; ``k′`` and ``k`` both run over ``key``). Per column (one query)
    the sum is ``∂L/∂S_{kq} = P_{kq} (∂L/∂P_{kq} − Σ_k′ P_{k′q} ∂L/∂P_{k′q})``, the softmax
    backward of :func:`~typedbackprop.nn.softmax.softmax_backward` with the sum over ``key``,
    axis ``-2``.
    """
    weighted = grad_weights * weights
    total: Float[Array, "heads batch 1 query"] = weighted.sum(axis=-2, keepdims=True)
    grad_scores: Float[Array, "heads batch key query"] = grad_weights - total
    grad_scores *= weights
    return grad_scores


ATTENTION_GRAD_SCORES = Spec("grad_scores", "hbKq,hbKqk->hbkq", ("grad_weights", "J"))
""":func:`attention_weights_backward` in index form, ``∂L/∂scores_{hbkq} = Σ_k′
∂L/∂weights_{hbk′q} J_{hbk′qk}``: the softmax's vector-Jacobian product, over ``key``."""


@checked
@static_jaxtyping("heads batch head_dim key query")
def weighted_values(
    v: Float[Array, "heads batch head_dim key"], weights: Float[Array, "heads batch key query"]
) -> Float[Array, "heads batch head_dim query"]:
    """Each query's output: the value columns weighted by its attention, ``O = V P``.

    Parameters
    ----------
    v
        Values, one column per key token.
    weights
        ``P``, one column per query, summing to 1 over ``key``.

    Returns
    -------
    output
        ``O``, one column per query.

    Notes
    -----
    ``O_{dq} = Σ_k V_{dk} P_{kq}``: ``(head_dim, key) @ (key, query)``.
    """
    return v @ weights


@checked
@static_jaxtyping("heads batch head_dim query key")
def scaled_dot_product_attention(
    q: Float[Array, "heads batch head_dim query"],
    k: Float[Array, "heads batch head_dim key"],
    v: Float[Array, "heads batch head_dim key"],
    causal: bool = False,
) -> tuple[Float[Array, "heads batch head_dim query"], Float[Array, "heads batch key query"]]:
    """Attention of every query to every key: ``O = V softmax(Kᵀ Q / √head_dim)``.

    Parameters
    ----------
    q
        Queries.
    k
        Keys.
    v
        Values, one column per key.
    causal
        Whether query ``q`` may only see keys ``k ≤ q`` (see :func:`causal_mask`).

    Returns
    -------
    output, weights
        ``O`` and the weights ``P`` (backward needs them).

    Notes
    -----
    ``S = Kᵀ Q / √D``, ``P = softmax_key(S)``, ``O = V P``; see :func:`attention_scores`,
    :func:`attention_weights` and :func:`weighted_values`.
    """
    scores = attention_scores(q, k)
    if causal:
        scores = causal_mask(scores)
    weights = attention_weights(scores)
    return weighted_values(v, weights), weights


@checked
@static_jaxtyping("heads batch head_dim query key")
def scaled_dot_product_attention_backward(
    grad_output: Float[Array, "heads batch head_dim query"],
    q: Float[Array, "heads batch head_dim query"],
    k: Float[Array, "heads batch head_dim key"],
    v: Float[Array, "heads batch head_dim key"],
    weights: Float[Array, "heads batch key query"],
) -> tuple[
    Float[Array, "heads batch head_dim query"],
    Float[Array, "heads batch head_dim key"],
    Float[Array, "heads batch head_dim key"],
]:
    """The gradients of attention's three inputs: ``(grad_q, grad_k, grad_v)``.

    Parameters
    ----------
    grad_output
        ``∂L/∂O``, the upstream gradient.
    q, k, v
        The forward's inputs.
    weights
        ``P``, saved by the forward (masked entries are 0 in it, so the mask needs no
        backward of its own).

    Returns
    -------
    grad_q, grad_k, grad_v
        Each the shape of its input.

    Notes
    -----
    Index form, for every head ``h`` and sequence ``b``, with ``D = head_dim``. Through
    ``O = V P``: ``∂L/∂v_{hbdk} = Σ_q ∂L/∂output_{hbdq} weights_{hbkq}`` and
    ``∂L/∂weights_{hbkq} = Σ_d ∂L/∂output_{hbdq} v_{hbdk}``. Through the softmax over keys,
    ``∂L/∂scores_{hbkq} = Σ_k′ ∂L/∂weights_{hbk′q} J_{hbk′qk}`` with ``J`` its Jacobian
    (:func:`attention_weights_backward`). Through ``S = Kᵀ Q / √D``:
    ``∂L/∂q_{hbdq} = Σ_k ∂L/∂scores_{hbkq} k_{hbdk} (1/√D)`` and
    ``∂L/∂k_{hbdk} = Σ_q ∂L/∂scores_{hbkq} q_{hbdq} (1/√D)``.

    Matrix form: ``∂L/∂V = ∂L/∂O Pᵀ`` (``(head_dim, query) @ (query, key)``) and
    ``∂L/∂P = Vᵀ ∂L/∂O`` (``(key, head_dim) @ (head_dim, query)``); ``∂L/∂Q = K ∂L/∂S / √D``
    (``(head_dim, key) @ (key, query)``) and ``∂L/∂K = Q (∂L/∂S)ᵀ / √D``
    (``(head_dim, query) @ (query, key)``). Each product is the only one whose shape is the
    annotation of its result.
    """
    grad_v = grad_output @ weights.mT
    grad_weights = v.mT @ grad_output
    grad_scores = attention_weights_backward(grad_weights, weights)
    grad_scores *= 1.0 / math.sqrt(q.shape[-2])
    grad_q = k @ grad_scores
    grad_k = q @ grad_scores.mT
    return grad_q, grad_k, grad_v


ATTENTION_GRAD_V = Spec("grad_v", "hbdq,hbkq->hbdk", ("grad_output", "weights"))
"""``∂L/∂v_{hbdk} = Σ_q ∂L/∂output_{hbdq} weights_{hbkq}``: ``grad_output @ weights.mT``."""

ATTENTION_GRAD_WEIGHTS = Spec("grad_weights", "hbdq,hbdk->hbkq", ("grad_output", "v"))
"""``∂L/∂weights_{hbkq} = Σ_d ∂L/∂output_{hbdq} v_{hbdk}``: ``v.mT @ grad_output``, the
upstream gradient of :data:`ATTENTION_GRAD_SCORES`."""

ATTENTION_GRAD_Q = Spec("grad_q", "hbkq,hbdk,->hbdq", ("grad_scores", "k", "1/√D"))
"""``∂L/∂q_{hbdq} = Σ_k ∂L/∂scores_{hbkq} k_{hbdk} (1/√D)``: ``k @ grad_scores``, the scores'
gradient already scaled by ``1/√D``."""

ATTENTION_GRAD_K = Spec("grad_k", "hbkq,hbdq,->hbdk", ("grad_scores", "q", "1/√D"))
"""``∂L/∂k_{hbdk} = Σ_q ∂L/∂scores_{hbkq} q_{hbdq} (1/√D)``: ``q @ grad_scores.mT``."""


# --- the projections: the affine layer at every token, in and out of the heads' layout ---------


@checked
@static_jaxtyping("heads head_dim features seq batch")
def heads_projection(
    W: Float[Array, "heads head_dim features"],
    b: Float[Array, "heads head_dim"] | None,
    x: Float[Array, "features seq batch"],
) -> Float[Array, "heads batch head_dim seq"]:
    """Project every token's features to each head: queries, keys or values.

    Parameters
    ----------
    W
        One ``"head_dim features"`` weight matrix per head.
    b
        One bias vector per head, or ``None`` for none (the keys').
    x
        Features, one column per token.

    Returns
    -------
    projected
        One ``"head_dim seq"`` matrix per head and sequence.

    Notes
    -----
    ``Z_{hbds} = Σ_f W_{hdf} x_{fsb} + b_{hd}``. It is :func:`affine_forward` with ``W``
    reshaped to ``(heads·head_dim, features)`` and every token as a column,
    ``(features, seq·batch)``: one matrix product for all heads and tokens. Reshaping the
    result to ``(heads, head_dim, seq, batch)`` and moving ``batch`` forward gives the stack.
    """
    heads, head_dim, features = W.shape
    _, seq, batch = x.shape
    rows, columns = W.reshape(heads * head_dim, features), x.reshape(features, seq * batch)
    z = rows @ columns if b is None else affine_forward(rows, b.reshape(heads * head_dim), columns)
    stacked = z.reshape(heads, head_dim, seq, batch)
    projected: Float[Array, "heads batch head_dim seq"] = stacked.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(projected)


@checked
@static_jaxtyping("heads head_dim features seq batch")
def heads_projection_backward(
    grad_projected: Float[Array, "heads batch head_dim seq"],
    W: Float[Array, "heads head_dim features"],
    x: Float[Array, "features seq batch"],
) -> tuple[
    Float[Array, "heads head_dim features"],
    Float[Array, "heads head_dim"],
    Float[Array, "features seq batch"],
]:
    """Gradients of a head projection: ``(grad_W, grad_b, grad_x)``.

    Parameters
    ----------
    grad_projected
        The upstream gradient, in the heads' layout.
    W
        The weights the forward pass used.
    x
        The input the forward pass saw.

    Returns
    -------
    grad_W, grad_b, grad_x
        Each the shape of its value.

    Notes
    -----
    ``∂L/∂W_{hdf} = Σ_{b,s} ∂L/∂projected_{hbds} x_{fsb}``,
    ``∂L/∂b_{hd} = Σ_{b,s} ∂L/∂projected_{hbds}`` and
    ``∂L/∂x_{fsb} = Σ_{h,d} ∂L/∂projected_{hbds} W_{hdf}``: with ``δ`` for
    ``∂L/∂projected``, the affine layer's ``δ a_prevᵀ``, ``δ 1`` and ``Wᵀ δ`` once ``δ`` is
    moved back to ``(heads·head_dim, seq·batch)``.
    """
    heads, head_dim, features = W.shape
    _, seq, batch = x.shape
    delta = grad_projected.transpose(0, 2, 3, 1).reshape(heads * head_dim, seq * batch)
    W_rows = W.reshape(heads * head_dim, features)
    grad_W, grad_b = affine_grad_params(delta, x.reshape(features, seq * batch))
    grad_x = affine_grad_input(delta, W_rows)
    return (
        grad_W.reshape(heads, head_dim, features),
        grad_b.reshape(heads, head_dim),
        grad_x.reshape(features, seq, batch),
    )


HEADS_PROJECTION_GRAD_W = Spec("grad_W", "hbds,fsb->hdf", ("grad_projected", "x"))
"""``∂L/∂W_{hdf} = Σ_{b,s} ∂L/∂projected_{hbds} x_{fsb}``: :func:`heads_projection_backward`."""

HEADS_PROJECTION_GRAD_B = Spec("grad_b", "hbds->hd", ("grad_projected",))
"""``∂L/∂b_{hd} = Σ_{b,s} ∂L/∂projected_{hbds}``: a sum over every token."""

HEADS_PROJECTION_GRAD_X = Spec("grad_x", "hbds,hdf->fsb", ("grad_projected", "W"))
"""``∂L/∂x_{fsb} = Σ_{h,d} ∂L/∂projected_{hbds} W_{hdf}``: ``Wᵀ δ`` over every head."""


@checked
@static_jaxtyping("features heads head_dim query batch")
def merge_heads(
    W: Float[Array, "features heads head_dim"],
    b: Float[Array, " features"],
    output: Float[Array, "heads batch head_dim query"],
) -> Float[Array, "features query batch"]:
    """Concatenate the heads' outputs at each token and project them back to ``features``.

    Parameters
    ----------
    W
        The output projection: one ``"features head_dim"`` block per head.
    b
        Its bias.
    output
        The heads' outputs ``O``.

    Returns
    -------
    y
        Features, one column per query token.

    Notes
    -----
    ``y_{fqb} = Σ_{h,d} W_{fhd} O_{hbdq} + b_f``: :func:`affine_forward` with ``W`` as
    ``(features, heads·head_dim)`` and ``O`` moved to ``(heads·head_dim, query·batch)``.
    """
    features, heads, head_dim = W.shape
    _, batch, _, query = output.shape
    columns = output.transpose(0, 2, 3, 1).reshape(heads * head_dim, query * batch)
    y = affine_forward(W.reshape(features, heads * head_dim), b, columns)
    return y.reshape(features, query, batch)


@checked
@static_jaxtyping("features heads head_dim query batch")
def merge_heads_backward(
    grad_y: Float[Array, "features query batch"],
    W: Float[Array, "features heads head_dim"],
    output: Float[Array, "heads batch head_dim query"],
) -> tuple[
    Float[Array, "features heads head_dim"],
    Float[Array, " features"],
    Float[Array, "heads batch head_dim query"],
]:
    """Gradients of :func:`merge_heads`: ``(grad_W, grad_b, grad_output)``.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    W
        The output projection the forward pass used.
    output
        The heads' outputs the forward pass saw.

    Returns
    -------
    grad_W, grad_b, grad_output
        Each the shape of its value.

    Notes
    -----
    ``∂L/∂W_{fhd} = Σ_{q,b} ∂L/∂y_{fqb} output_{hbdq}``, ``∂L/∂b_{f} = Σ_{q,b} ∂L/∂y_{fqb}``
    and ``∂L/∂output_{hbdq} = Σ_f ∂L/∂y_{fqb} W_{fhd}``: the affine layer's three gradients,
    and the forward's reshapes undone.
    """
    features, heads, head_dim = W.shape
    _, batch, _, query = output.shape
    delta = grad_y.reshape(features, query * batch)
    columns = output.transpose(0, 2, 3, 1).reshape(heads * head_dim, query * batch)
    grad_W, grad_b = affine_grad_params(delta, columns)
    grad_columns = affine_grad_input(delta, W.reshape(features, heads * head_dim))
    stacked = grad_columns.reshape(heads, head_dim, query, batch)
    grad_output: Float[Array, "heads batch head_dim query"] = stacked.transpose(0, 3, 1, 2)
    return grad_W.reshape(features, heads, head_dim), grad_b, np.ascontiguousarray(grad_output)


MERGE_HEADS_GRAD_W = Spec("grad_W", "fqb,hbdq->fhd", ("grad_y", "output"))
"""``∂L/∂W_{fhd} = Σ_{q,b} ∂L/∂y_{fqb} output_{hbdq}``: :func:`merge_heads_backward`."""

MERGE_HEADS_GRAD_B = Spec("grad_b", "fqb->f", ("grad_y",))
"""``∂L/∂b_{f} = Σ_{q,b} ∂L/∂y_{fqb}``: a sum over every token."""

MERGE_HEADS_GRAD_OUTPUT = Spec("grad_output", "fqb,fhd->hbdq", ("grad_y", "W"))
"""``∂L/∂output_{hbdq} = Σ_f ∂L/∂y_{fqb} W_{fhd}``: ``Wᵀ ∂L/∂y``, back in the heads' layout."""


# --- the attention family: multi-head self-attention -------------------------------------------


@checked_record()
@dataclass(frozen=True, slots=True)
class Attention(Layer):
    """Multi-head self-attention's parameters (or their gradients) and its mask setting.

    Parameters
    ----------
    W_query, b_query
        The query projection of each head.
    W_key
        The key projection of each head. Keys have no bias: it would add ``b_keyᵀ q`` to the
        score of every key for query ``q``, a shift the softmax over keys ignores, so its
        gradient would always be 0.
    W_value, b_value
        The value projection of each head.
    W_output, b_output
        The projection of the concatenated heads back to ``features``.
    causal
        Whether each token attends only to itself and the tokens before it. Off by default, as
        PyTorch's ``is_causal``; a model that predicts the next tokens turns it on
        (``models.transformer`` does).
    """

    W_query: Float[Array, "heads head_dim features"]
    b_query: Float[Array, "heads head_dim"]
    W_key: Float[Array, "heads head_dim features"]
    W_value: Float[Array, "heads head_dim features"]
    b_value: Float[Array, "heads head_dim"]
    W_output: Float[Array, "features heads head_dim"]
    b_output: Float[Array, " features"]
    causal: bool = False


@dataclass(frozen=True, slots=True)
class AttentionCache:
    """What :func:`attention_forward` saves for :func:`attention_backward`."""

    layer: Attention
    """The parameters (the projections' backward needs the weights)."""
    x: Float[Array, "features seq batch"]
    """The input (the projections' weight gradients need it)."""
    q: Float[Array, "heads batch head_dim query"]
    """The queries."""
    k: Float[Array, "heads batch head_dim key"]
    """The keys."""
    v: Float[Array, "heads batch head_dim key"]
    """The values."""
    weights: Float[Array, "heads batch key query"]
    """The attention weights ``P``."""
    output: Float[Array, "heads batch head_dim query"]
    """The heads' outputs ``O = V P``, before the output projection."""


@checked
@runtime_shapes_only(
    "hands the record's weights, which have no shape for Pyrefly, to the projections and to "
    "attention, whose shapes are checked by name; here queries and keys are both seq, so no "
    "name tells them apart"
)
def attention_forward(
    layer: Attention, x: Float[Array, "features seq batch"]
) -> tuple[Float[Array, "features seq batch"], AttentionCache]:
    """Multi-head self-attention under the layer contract: every token attends to the others.

    Parameters
    ----------
    layer
        The projections and the mask setting.
    x
        Features, one column per token; queries, keys and values all come from it.

    Returns
    -------
    y, cache
        The attended features, and the :class:`AttentionCache`.

    Notes
    -----
    ``Q = W_query x + b_query`` per head (likewise ``K`` and ``V``), ``O = V softmax(Kᵀ Q /
    √head_dim)`` per head and sequence, ``y = W_output concat_heads(O) + b_output``.
    """
    q = heads_projection(layer.W_query, layer.b_query, x)
    k = heads_projection(layer.W_key, None, x)  # no key bias: see Attention
    v = heads_projection(layer.W_value, layer.b_value, x)
    output, weights = scaled_dot_product_attention(q, k, v, layer.causal)
    y = merge_heads(layer.W_output, layer.b_output, output)
    return y, AttentionCache(layer, x, q, k, v, weights, output)


@checked
@runtime_shapes_only(
    "hands the cache's fields, which have no shape for Pyrefly, to the backward passes of the "
    "projections and of attention, whose shapes are checked by name; here queries and keys "
    "are both seq, so no name tells them apart"
)
def attention_backward(
    grad_y: Float[Array, "features seq batch"], cache: AttentionCache
) -> tuple[Attention, Float[Array, "features seq batch"]]:
    """Gradients of self-attention: ``(Attention(grad_W_query, ...), grad_x)``.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    cache
        What :func:`attention_forward` saved.

    Returns
    -------
    grads, grad_x
        Every parameter's gradient in an :class:`Attention` (with the layer's ``causal``), and
        ``∂L/∂x``.

    Notes
    -----
    Backward through the output projection (:func:`merge_heads_backward`), attention
    (:func:`scaled_dot_product_attention_backward`) and the three input projections
    (:func:`heads_projection_backward`). ``x`` feeds all three projections, so its gradient
    is the sum of theirs.
    """
    layer = cache.layer
    grad_W_output, grad_b_output, grad_output = merge_heads_backward(
        grad_y, layer.W_output, cache.output
    )
    grad_q, grad_k, grad_v = scaled_dot_product_attention_backward(
        grad_output, cache.q, cache.k, cache.v, cache.weights
    )
    grad_W_query, grad_b_query, grad_x = heads_projection_backward(grad_q, layer.W_query, cache.x)
    # A key bias's gradient, Σ over tokens of grad_k, is 0: each column of ∂L/∂S sums to 0.
    grad_W_key, _, grad_x_key = heads_projection_backward(grad_k, layer.W_key, cache.x)
    grad_W_value, grad_b_value, grad_x_value = heads_projection_backward(
        grad_v, layer.W_value, cache.x
    )
    grad_x += grad_x_key
    grad_x += grad_x_value
    grads = Attention(
        grad_W_query,
        grad_b_query,
        grad_W_key,
        grad_W_value,
        grad_b_value,
        grad_W_output,
        grad_b_output,
        layer.causal,
    )
    return grads, grad_x
