"""Multi-head self-attention's equations: the projections, ``Kᵀ Q``, the softmax, ``V P``.

Every operand is printed with its name and its shape (the scores ``S`` are shaped like the
weights ``P``, each ``grad_<v>`` like ``<v>``).
"""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.attention import Attention, AttentionCache

__all__ = ["attention_forward_rows", "attention_backward_rows"]


def attention_forward_rows(
    names: Names, layer: Attention, cache: AttentionCache, output: Array
) -> list[Row]:
    """Attention's forward equations, from the projections to the output projection."""
    s, n, x = shape_text, names.number, names.input
    q, v = f"q{n} {s(cache.q.shape)}", f"v{n} {s(cache.v.shape)}"
    scores, weights = f"S{n} {s(cache.weights.shape)}", f"P{n} {s(cache.weights.shape)}"
    rows = [
        (
            f"{name}{n} {s(value.shape)} = {names.parameter(f'W_{long}')} {s(W.shape)} · {x} "
            f"{s(cache.x.shape)}"
            + ("" if b is None else f" + {names.parameter(f'b_{long}')} {s(b.shape)}"),
            f"the {plural}, moved to (heads, batch, head_dim, seq)",
        )
        for name, long, plural, value, W, b in [
            ("q", "query", "queries", cache.q, layer.W_query, layer.b_query),
            ("k", "key", "keys (no bias)", cache.k, layer.W_key, None),
            ("v", "value", "values", cache.v, layer.W_value, layer.b_value),
        ]
    ]
    head_dim = cache.q.shape[2]
    rows.append(
        (
            f"{scores} = k{n}.mT {s(cache.k.mT.shape)} @ {q} / sqrt({head_dim})",
            "Kᵀ Q: key × query, per head and sequence",
        )
    )
    if layer.causal:
        rows.append((f"{scores}[..., key > query] = -inf", "causal: no key after its query"))
    rows += [
        (f"{weights} = softmax({scores}, axis=-2)", "over key: each query's column sums to 1"),
        (
            f"o{n} {s(cache.output.shape)} = {v} @ {weights}",
            "V P: a weighted mean of the values per query",
        ),
        (
            f"{names.output} {s(output.shape)} = {names.parameter('W_output')} "
            f"{s(layer.W_output.shape)} · o{n} {s(cache.output.shape)} + "
            f"{names.parameter('b_output')} {s(layer.b_output.shape)}",
            "sum over heads and head_dim, at every token",
        ),
    ]
    return rows


def attention_backward_rows(names: Names, layer: Attention, cache: AttentionCache) -> list[Row]:
    """Attention's backward equations, every parameter's gradient among them."""
    s, n, x = shape_text, names.number, names.input
    q, k, v, p, o = (
        s(value.shape) for value in (cache.q, cache.k, cache.v, cache.weights, cache.output)
    )
    delta = f"{names.grad_output} {s(cache.x.shape)}"  # ∂L/∂y is shaped like y, and y like x
    W_output = names.parameter("W_output")
    P, grad_P, grad_S = f"P{n} {p}", f"grad_P{n} {p}", f"grad_S{n} {p}"
    grad_o = f"grad_o{n} {o}"
    projections = [
        ("q", "query", q, layer.W_query, layer.b_query),
        ("k", "key", k, layer.W_key, None),
        ("v", "value", v, layer.W_value, layer.b_value),
    ]
    rows = [
        (
            f"grad_{W_output} {s(layer.W_output.shape)} = {delta} · o{n} {o}, summed over tokens",
            "shaped like W_output",
        ),
        (
            f"grad_{names.parameter('b_output')} {s(layer.b_output.shape)} = "
            f"{delta}.sum(axis=(1, 2))",
            "b_output was broadcast along every token",
        ),
        (f"{grad_o} = {W_output} {s(layer.W_output.shape)} · {delta}", "back to the heads' layout"),
        (f"grad_v{n} {v} = {grad_o} @ P{n}.mT {s(cache.weights.mT.shape)}", "∂(V P)/∂V"),
        (f"{grad_P} = v{n}.mT {s(cache.v.mT.shape)} @ {grad_o}", "∂(V P)/∂P"),
        (
            f"{grad_S} = {P} * ({grad_P} - (P{n} * grad_P{n}).sum(axis=-2))",
            "the softmax over key; 0 where masked",
        ),
        (
            f"grad_q{n} {q} = k{n} {k} @ {grad_S} / sqrt(head_dim)",
            "(head_dim, key) @ (key, query)",
        ),
        (
            f"grad_k{n} {k} = q{n} {q} @ grad_S{n}.mT {s(cache.weights.mT.shape)} / sqrt(head_dim)",
            "(head_dim, query) @ (query, key)",
        ),
    ]
    for name, long, shape, W, b in projections:
        rows.append(
            (
                f"grad_{names.parameter(f'W_{long}')} {s(W.shape)} = grad_{name}{n} {shape} · "
                f"{x} {s(cache.x.shape)}, summed over tokens",
                f"shaped like W_{long}",
            )
        )
        if b is not None:
            rows.append(
                (
                    f"grad_{names.parameter(f'b_{long}')} {s(b.shape)} = grad_{name}{n} {shape}"
                    ".sum(axis=(1, 3))",
                    f"sum over batch and {'query' if name == 'q' else 'key'}: every token",
                )
            )
    if names.input_gradient:
        rows.append(
            (
                f"{names.grad_input} {s(cache.x.shape)} = "
                + " + ".join(
                    f"{names.parameter(f'W_{long}')} {s(W.shape)} · grad_{name}{n} {shape}"
                    for name, long, shape, W, _ in projections
                ),
                "x feeds all three projections",
            )
        )
    return rows
