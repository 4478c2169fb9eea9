"""Shape mistakes in attention (``typedbackprop/nn/attention.py``): query and key confused.

In self-attention the queries and the keys are the same tokens, so ``query == key`` at run time
and every mistake that swaps the two runs silently: the scores built as ``Qᵀ K`` instead of
``Kᵀ Q``, the softmax taken over the queries instead of the keys, ``grad_q`` and ``grad_k``
swapped, a product missing its transpose. Each gives a ``"query key"`` array where a
``"key query"`` one is meant, or a ``"head_dim key"`` where a ``"head_dim query"`` is; by name
they never agree. ``head_dim`` is a third size: a mistake that also needs ``head_dim == key``
to run is not marked silent.

The projections in and out of the heads move between ``"features seq batch"`` and the heads'
stack by reshapes to products of dimensions (``heads·head_dim``, ``seq·batch``), which Pyrefly
follows when the sizes are named (``heads, head_dim, features = W.shape``); their mistakes
are the stack's axes permuted (silent when ``seq == head_dim``), a weight matrix in its
transpose's shape and the affine gradients' arguments swapped. A reshape with its factors in
the wrong order (``(batch, query)`` for ``(query, batch)``) runs only when the two sizes are
equal, and is then the same array: flagged, but not silent.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/attention.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "attention_scores",
        "return (k.mT @ q) * (1.0 / math.sqrt(q.shape[-2]))",
        "return (q.mT @ k) * (1.0 / math.sqrt(q.shape[-2]))",
        'scores built as Qᵀ K instead of Kᵀ Q: a "query key" array for "key query"',
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "attention_weights",
        'largest: Float[Array, "heads batch 1 query"] = scores.max(axis=-2, keepdims=True)',
        'largest: Float[Array, "heads batch 1 query"] = scores.max(axis=-1, keepdims=True)',
        "the softmax's largest score taken over the wrong axis of the scores (axis -1, the "
        "queries) instead of the keys",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "attention_weights",
        'total: Float[Array, "heads batch 1 query"] = weights.sum(axis=-2, keepdims=True)',
        'total: Float[Array, "heads batch 1 query"] = weights.sum(axis=-1, keepdims=True)',
        "the softmax normalized over the wrong axis of the scores (axis -1, the queries): rows "
        "sum to 1 instead of columns",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "attention_weights_backward",
        'total: Float[Array, "heads batch 1 query"] = weighted.sum(axis=-2, keepdims=True)',
        'total: Float[Array, "heads batch 1 query"] = weighted.sum(axis=-1, keepdims=True)',
        "the softmax backward's Σ P ⊙ ∂L/∂P over the wrong axis (axis -1, the queries) instead "
        "of the keys",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "weighted_values",
        "return v @ weights",
        "return v @ weights.mT",
        "output as V Pᵀ: each value weighted by the query's column of a key, query and key swapped",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "scaled_dot_product_attention",
        "scores = attention_scores(q, k)",
        "scores = attention_scores(k, q)",
        "the scores' arguments swapped, the keys passed as the queries and the queries as keys",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "scaled_dot_product_attention_backward",
        "return grad_q, grad_k, grad_v",
        "return grad_k, grad_q, grad_v",
        "grad_q and grad_k swapped: the key's gradient returned for the query",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "scaled_dot_product_attention_backward",
        "grad_k = q @ grad_scores.mT",
        "grad_k = q @ grad_scores",
        'grad_k as Q ∂L/∂S, the transpose missing: a "head_dim query" gradient for the key',
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "scaled_dot_product_attention_backward",
        "grad_v = grad_output @ weights.mT",
        "grad_v = grad_output @ weights",
        "grad_v as ∂L/∂O P, the transpose of the weights missing (query and key swapped)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "scaled_dot_product_attention_backward",
        "grad_weights = v.mT @ grad_output",
        "grad_weights = grad_output.mT @ v",
        '∂L/∂P as ∂L/∂Oᵀ V, a "query key" array for "key query" (batch-first habit)',
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "heads_projection",
        'projected: Float[Array, "heads batch head_dim seq"] = stacked.transpose(0, 3, 1, 2)',
        'projected: Float[Array, "heads batch head_dim seq"] = stacked.transpose(0, 3, 2, 1)',
        "the heads' stack permuted to (heads, batch, seq, head_dim), a row per token "
        "(PyTorch's layout) instead of a column",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "heads_projection",
        "rows, columns = W.reshape(heads * head_dim, features), x.reshape(features, seq * batch)",
        "rows, columns = W.reshape(heads * head_dim, features), x.reshape(seq * batch, features)",
        "the tokens reshaped as rows (seq·batch, features), the batch-first habit",
    ),
    Mutant(
        MODULE,
        "heads_projection_backward",
        "grad_x = affine_grad_input(delta, W_rows)",
        "grad_x = affine_grad_input(delta, W_rows.T)",
        "grad_x from the transposed rows Wᵀ, W's transpose taken twice",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "merge_heads",
        "y = affine_forward(W.reshape(features, heads * head_dim), b, columns)",
        "y = affine_forward(W.reshape(heads * head_dim, features), b, columns)",
        "the output projection reshaped as (heads·head_dim, features), its transpose's shape",
    ),
    Mutant(
        MODULE,
        "merge_heads",
        "return y.reshape(features, query, batch)",
        "return y.reshape(features, batch, query)",
        "the tokens' query·batch columns unflattened as (batch, query)",
    ),
    Mutant(
        MODULE,
        "merge_heads_backward",
        'grad_output: Float[Array, "heads batch head_dim query"] = stacked.transpose(0, 3, 1, 2)',
        'grad_output: Float[Array, "heads batch head_dim query"] = stacked.transpose(0, 3, 2, 1)',
        "grad_output permuted to (heads, batch, query, head_dim), a row per token instead of "
        "a column",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "merge_heads_backward",
        "grad_W, grad_b = affine_grad_params(delta, columns)",
        "grad_W, grad_b = affine_grad_params(columns, delta)",
        "the parameter gradients' arguments swapped, the heads' outputs passed as δ",
        silent_at_runtime=True,
    ),
]
