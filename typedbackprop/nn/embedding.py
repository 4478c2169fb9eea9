"""Token and position embeddings: integer ids in, one feature column per position out.

Layout is features first, batch last: the ids of a batch of sequences are ``"seq batch"`` (one
column per sequence), and the embedding of position ``s`` of sequence ``b`` is the column
``output[:, s, b]``, so that the output, ``"features seq batch"``, is what every later layer
reads. The table itself is ``"vocab features"``, one row per id, as in ``torch.nn.Embedding``:
looking an id up is taking a row.
"""

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int

from typedbackprop.checking import (
    Array,
    IntArray,
    checked,
    checked_record,
    runtime_shapes_only,
    static_jaxtyping,
)
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.specs import Spec

__all__ = [
    "Embedding",
    "EmbeddingCache",
    "PositionalEmbedding",
    "PositionalEmbeddingCache",
    "embedding_lookup",
    "embedding_scatter",
    "embedding_forward",
    "embedding_backward",
    "positional_forward",
    "positional_backward",
]


def _require_ids_in_range(ids: IntArray, vocab: int) -> None:
    """Raise ``ValueError`` naming the first id outside ``[0, vocab)`` and its position."""
    outside = (ids < 0) | (ids >= vocab)
    if outside.any():
        seq, batch = (int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"id {int(ids[seq, batch])} at position (seq={seq}, batch={batch}) is outside the "
            f"vocabulary of {vocab} ids, 0 to {vocab - 1}"
        )


@checked
@runtime_shapes_only("np.take by an array of ids (a gather) returns no shape")
def embedding_lookup(
    table: Float[Array, "vocab features"], ids: Int[IntArray, "seq batch"]
) -> Float[Array, "features seq batch"]:
    """Look every id up in the table: column ``(s, b)`` of the result is row ``ids[s, b]``.

    Parameters
    ----------
    table
        One row of features per id.
    ids
        Integer ids, one column per sequence.

    Returns
    -------
    x
        The embedded sequences, one feature column per position.

    Raises
    ------
    ValueError
        For an id outside ``[0, vocab)``, naming it and its position. NumPy would read a
        negative id from the end of the table, silently.

    Notes
    -----
    ``x_{fsb} = table_{ids_{sb} f}``. ``np.take(table.T, ids, axis=1)`` takes the columns of
    ``tableᵀ`` (``"features vocab"``) in the pattern of ``ids``: the ``vocab`` axis is replaced
    by ``"seq batch"``, giving ``"features seq batch"`` in one step.
    """
    _require_ids_in_range(ids, table.shape[0])
    return np.take(table.T, ids, axis=1)


@checked
@runtime_shapes_only("np.add.at, the scatter-add by ids, returns no shape")
def embedding_scatter(
    grad_x: Float[Array, "features seq batch"],
    ids: Int[IntArray, "seq batch"],
    vocab: int,
) -> Float[Array, "vocab features"]:
    """The gradient of the table: each position's gradient added into the row it read.

    Parameters
    ----------
    grad_x
        ``∂L/∂x``, the upstream gradient, one column per position.
    ids
        The ids the forward pass looked up.
    vocab
        The number of rows of the table.

    Returns
    -------
    grad_table
        ``∂L/∂table``; rows of ids that did not occur are zero.

    Notes
    -----
    Index form: ``∂L/∂table_{vf} = Σ_{s,b} ∂L/∂x_{fsb} [ids_{sb} = v]``, with the local
    gradient ``∂x_{fsb}/∂table_{vf} = [ids_{sb} = v]`` (1 where position ``(s, b)`` read row
    ``v``, else 0: a one-hot of the ids): an id that occurs at several positions collects the
    sum of their gradients. ``grad_table[ids] += ...`` would
    keep only one of them (NumPy's fancy assignment does not accumulate repeated indices);
    ``np.add.at`` does accumulate. ``grad_x.transpose(1, 2, 0)`` is ``"seq batch features"``,
    one feature row per position, lined up with ``ids``.
    """
    grad_table = np.zeros((vocab, grad_x.shape[0]), dtype=grad_x.dtype)
    np.add.at(grad_table, ids, grad_x.transpose(1, 2, 0))
    return grad_table


EMBEDDING_GRAD_TABLE = Spec("grad_table", "fsb,vsb->vf", ("grad_x", "one_hot(ids)"))
""":func:`embedding_scatter` in index form, ``∂L/∂table_{vf} = Σ_{s,b} ∂L/∂x_{fsb}
[ids_{sb} = v]``: the one-hot of the ids picks, for row ``v``, the positions that read it."""


@checked_record()
@dataclass(frozen=True, slots=True)
class Embedding(Layer):
    """A table of learned features, one row per token id (or the table's gradient).

    Parameters
    ----------
    table
        Row ``v`` holds the features of id ``v``.
    """

    table: Float[Array, "vocab features"]


@dataclass(frozen=True, slots=True)
class EmbeddingCache:
    """What :func:`embedding_forward` saves for :func:`embedding_backward`."""

    table: Float[Array, "vocab features"]
    """The table the forward pass read (its shape and dtype are those of the gradient)."""
    ids: Int[IntArray, "seq batch"]
    """The ids it looked up: the rows their gradients go back to."""


@checked
@runtime_shapes_only("one call of embedding_lookup, whose np.take returns no shape")
def embedding_forward(
    layer: Embedding, ids: Int[IntArray, "seq batch"]
) -> tuple[Float[Array, "features seq batch"], EmbeddingCache]:
    """The embedding layer under the layer contract: the looked-up features and the cache.

    Parameters
    ----------
    layer
        The table.
    ids
        Integer ids, one column per sequence.

    Returns
    -------
    x, cache
        The embedded sequences, and the :class:`EmbeddingCache` of the table and the ids.

    Notes
    -----
    ``x_{fsb} = table_{ids_{sb} f}``; see :func:`embedding_lookup`.
    """
    return embedding_lookup(layer.table, ids), EmbeddingCache(layer.table, ids)


@checked
@runtime_shapes_only("one call of embedding_scatter, whose np.add.at returns no shape")
def embedding_backward(
    grad_x: Float[Array, "features seq batch"], cache: EmbeddingCache
) -> Embedding:
    """The gradient of the table, ``Embedding(∂L/∂table)``; ids, being integers, have none.

    Parameters
    ----------
    grad_x
        ``∂L/∂x``, the upstream gradient.
    cache
        What :func:`embedding_forward` saved.

    Returns
    -------
    grads
        ``∂L/∂table`` in an :class:`Embedding`, the shape of the table.

    Notes
    -----
    ``∂L/∂table_{vf} = Σ_{s,b} ∂L/∂x_{fsb} [ids_{sb} = v]``; see :func:`embedding_scatter`.
    The only array argument of forward that has a gradient is the table: an integer id is
    not a point a loss can be differentiated at.
    """
    return Embedding(embedding_scatter(grad_x, cache.ids, cache.table.shape[0]))


# --- learned positions ------------------------------------------------------------------------


@checked_record()
@dataclass(frozen=True, slots=True)
class PositionalEmbedding(Layer):
    """A learned vector per position, added to every sequence (or its gradient).

    Parameters
    ----------
    table
        Row ``s`` is added to the features at position ``s``; sequences may be shorter than
        ``context``, the number of rows, and then use its first rows.
    """

    table: Float[Array, "context features"]


@dataclass(frozen=True, slots=True)
class PositionalEmbeddingCache:
    """What :func:`positional_forward` saves: its arguments, whose shapes its gradients have."""

    table: Float[Array, "context features"]
    """The table the forward pass added."""
    x: Float[Array, "features seq batch"]
    """The input (held, not copied: backward reads only its shape, through the check)."""


@checked
@static_jaxtyping("features seq batch context")
def positional_forward(
    layer: PositionalEmbedding, x: Float[Array, "features seq batch"]
) -> tuple[Float[Array, "features seq batch"], PositionalEmbeddingCache]:
    """Add each position's learned vector: ``y = x + tableᵀ`` at every sequence.

    Parameters
    ----------
    layer
        The table of positions.
    x
        Features, one column per position.

    Returns
    -------
    y, cache
        ``x`` with the positions added, and the cache.

    Raises
    ------
    ValueError
        For a sequence longer than the table.

    Notes
    -----
    ``y_{fsb} = x_{fsb} + table_{sf}``. ``table[:seq].T`` is ``"features seq"``; the trailing
    ``np.newaxis`` makes it ``(features, seq, 1)``, added along ``batch``.
    """
    table: Float[Array, "context features"] = layer.table  # a record's field: Pyrefly sees no shape
    context, seq = table.shape[0], x.shape[1]
    if seq > context:
        raise ValueError(f"a sequence of {seq} positions is longer than the {context} learned")
    return x + table[:seq].T[:, :, np.newaxis], PositionalEmbeddingCache(table, x)


@checked
@static_jaxtyping("features seq batch")
def positional_backward(
    grad_y: Float[Array, "features seq batch"], cache: PositionalEmbeddingCache
) -> tuple[PositionalEmbedding, Float[Array, "features seq batch"]]:
    """Gradients of the positions and of the input: ``(PositionalEmbedding(∂L/∂table), ∂L/∂x)``.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    cache
        What :func:`positional_forward` saved.

    Returns
    -------
    grads, grad_x
        ``∂L/∂table`` (rows past ``seq`` zero), and ``∂L/∂x = ∂L/∂y``.

    Notes
    -----
    ``∂L/∂table_{sf} = Σ_b ∂L/∂y_{fsb}``: a position's vector was added to every sequence, so
    its gradient sums over ``batch``, the axis it was broadcast along; ``.T`` turns the
    ``"features seq"`` sum into rows.
    """
    seq = grad_y.shape[1]
    grad_rows: Float[Array, "seq features"] = grad_y.sum(axis=2).T  # the rows forward added
    grad_table = np.zeros_like(cache.table)
    grad_table[:seq] = grad_rows
    return PositionalEmbedding(grad_table), grad_y
