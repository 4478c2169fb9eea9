"""The embeddings' equations: a lookup in the token table, and the positions added.

The token table is called ``E`` and the positions' table ``pos`` (both are ``table`` in their
records): :data:`EMBEDDING_NAMES` and :data:`POSITIONAL_NAMES`.
"""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.embedding import (
    Embedding,
    EmbeddingCache,
    PositionalEmbedding,
    PositionalEmbeddingCache,
)

__all__ = [
    "EMBEDDING_NAMES",
    "POSITIONAL_NAMES",
    "embedding_forward_rows",
    "embedding_backward_rows",
    "positional_forward_rows",
    "positional_backward_rows",
]

EMBEDDING_NAMES = {"table": "E"}
"""The token table's name in the equations (``E1``), by its field."""

POSITIONAL_NAMES = {"table": "pos"}
"""The positions' table's name in the equations (``pos2``), by its field."""


def embedding_forward_rows(
    names: Names, layer: Embedding, cache: EmbeddingCache, output: Array
) -> list[Row]:
    """The lookup, with every operand's shape."""
    E, table = names.parameter(EMBEDDING_NAMES["table"]), layer.table
    return [
        (
            f"{names.output} {shape_text(output.shape)} = {E}.T {shape_text(table.T.shape)}"
            f"[:, {names.input} {shape_text(cache.ids.shape)}]",
            "column (s, b) is row ids[s, b] of the table",
        )
    ]


def embedding_backward_rows(names: Names, layer: Embedding, cache: EmbeddingCache) -> list[Row]:
    """The scatter-add, with every operand's shape (ids have no gradient)."""
    E, grad = names.parameter(EMBEDDING_NAMES["table"]), names.grad_output
    rows = shape_text((*cache.ids.shape, layer.table.shape[1]))
    return [
        (
            f"grad_{E} {shape_text(layer.table.shape)} = zeros; np.add.at(grad_{E}, "
            f"{names.input} {shape_text(cache.ids.shape)}, {grad}.transpose(1, 2, 0) {rows})",
            "a repeated id sums its tokens' gradients; ids have none",
        )
    ]


def positional_forward_rows(
    names: Names, layer: PositionalEmbedding, cache: PositionalEmbeddingCache, output: Array
) -> list[Row]:
    """The added positions."""
    pos, seq = names.parameter(POSITIONAL_NAMES["table"]), cache.x.shape[1]
    return [
        (
            f"{names.output} {shape_text(output.shape)} = {names.input} "
            f"{shape_text(cache.x.shape)} + {pos}[:{seq}].T[:, :, None] "
            f"{shape_text((layer.table.shape[1], seq, 1))}",
            "the same vector per position in every sequence",
        )
    ]


def positional_backward_rows(
    names: Names, layer: PositionalEmbedding, cache: PositionalEmbeddingCache
) -> list[Row]:
    """The positions' gradient (and the identity to the input)."""
    pos, seq = names.parameter(POSITIONAL_NAMES["table"]), cache.x.shape[1]
    shape = shape_text(cache.x.shape)
    grad = f"{names.grad_output} {shape}"  # ∂L/∂y is shaped like y, and y like x
    rows = [
        (
            f"grad_{pos}[:{seq}] {shape_text((seq, layer.table.shape[1]))} = {grad}.sum(axis=2).T",
            "pos was broadcast along batch; later rows stay 0",
        )
    ]
    if names.input_gradient:
        rows.append((f"{names.grad_input} {shape} = {grad}", "the identity on x"))
    return rows
