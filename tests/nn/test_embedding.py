"""Tests for typedbackprop.nn.embedding: token lookup, its scatter-add backward, positions."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone, raises_shape_error, vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError
from sequence_helpers import distinct_sizes

import typedbackprop as tbp
from typedbackprop.nn.embedding import (
    Embedding,
    EmbeddingCache,
    PositionalEmbedding,
    embedding_backward,
    embedding_forward,
    embedding_lookup,
    embedding_scatter,
    positional_backward,
    positional_forward,
)


@st.composite
def lookups(draw):
    """``(table, ids, grad_x)``: vocab, features, seq and batch all different, ids repeating."""
    vocab, features, seq, batch = draw(distinct_sizes(4))
    rng = np.random.default_rng(draw(SEEDS))
    return (
        rng.standard_normal((vocab, features)),
        rng.integers(0, vocab, size=(seq, batch)),
        rng.standard_normal((features, seq, batch)),
    )


def torch_embedding(table, ids, grad_x):
    """``F.embedding`` gives ``(seq, batch, features)``; permuted to features first here."""
    index = torch.tensor(ids, dtype=torch.int64)
    x, (grad_table,) = vjp(
        lambda table: F.embedding(index, table).permute(2, 0, 1), [table], grad_x
    )
    return x, grad_table


# --- values by hand ---------------------------------------------------------------------------

# vocab=3, features=2; ids seq=2, batch=3, with id 2 at three positions and id 1 at none.
TABLE = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
IDS = np.array([[2, 0, 2], [0, 2, 0]])


def test_lookup_by_hand_puts_each_row_in_its_column():
    x = embedding_lookup(TABLE, IDS)
    assert x.shape == (2, 2, 3)  # features, seq, batch
    # column (s, b) is row IDS[s, b]: feature 0 of the rows 2, 0, 2 / 0, 2, 0
    np.testing.assert_array_equal(x[0], [[5.0, 1.0, 5.0], [1.0, 5.0, 1.0]])
    np.testing.assert_array_equal(x[1], [[6.0, 2.0, 6.0], [2.0, 6.0, 2.0]])


def test_scatter_by_hand_sums_the_gradients_of_a_repeated_id():
    grad_x = np.stack(
        [
            np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),  # feature 0
            np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]]),  # feature 1
        ]
    )
    grad_table = embedding_scatter(grad_x, IDS, 3)
    # id 0 sits at (0, 1), (1, 0), (1, 2): 2 + 4 + 6 and 20 + 40 + 60;
    # id 1 at none; id 2 at (0, 0), (0, 2), (1, 1): 1 + 3 + 5 and 10 + 30 + 50.
    np.testing.assert_array_equal(grad_table, [[12.0, 120.0], [0.0, 0.0], [9.0, 90.0]])
    grads = embedding_backward(grad_x, embedding_forward(Embedding(TABLE), IDS)[1])
    np.testing.assert_array_equal(grads.table, grad_table)


def test_positions_by_hand_add_one_row_per_position_and_sum_over_the_batch():
    table = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])  # context=3, features=2
    x = np.zeros((2, 2, 3))  # features=2, seq=2, batch=3: only the first two rows are used
    y, cache = positional_forward(PositionalEmbedding(table), x)
    np.testing.assert_array_equal(y[:, 0, :], [[1.0] * 3, [2.0] * 3])
    np.testing.assert_array_equal(y[:, 1, :], [[10.0] * 3, [20.0] * 3])
    grad_y = np.arange(12.0).reshape(2, 2, 3)
    grads, grad_x = positional_backward(grad_y, cache)
    # row s, feature f: Σ_b grad_y[f, s, b]; row 2 was not used
    np.testing.assert_array_equal(
        grads.table, [[0 + 1 + 2, 6 + 7 + 8], [3 + 4 + 5, 9 + 10 + 11], [0, 0]]
    )
    assert grad_x is grad_y


# --- gradient checks --------------------------------------------------------------------------


@settings(deadline=None, max_examples=25)
@given(case=lookups())
def test_embedding_passes_gradcheck(case):
    table, ids, _ = case
    report = tbp.gradcheck(
        lambda table: embedding_forward(Embedding(table), ids)[0],
        lambda grad_x, table: (
            embedding_backward(grad_x, embedding_forward(Embedding(table), ids)[1]).table
        ),
        [table],
    )
    assert report.passed, report


@settings(deadline=None, max_examples=25)
@given(case=lookups(), context_extra=st.integers(0, 2))
def test_positional_embedding_passes_gradcheck(case, context_extra):
    _, ids, x = case
    features, seq, _ = x.shape
    table = np.random.default_rng(seq).standard_normal((seq + context_extra, features))

    def backward(grad_y, table, x):
        grads, grad_x = positional_backward(
            grad_y, positional_forward(PositionalEmbedding(table), x)[1]
        )
        return grads.table, grad_x

    report = tbp.gradcheck(
        lambda table, x: positional_forward(PositionalEmbedding(table), x)[0], backward, [table, x]
    )
    assert report.passed, report


# --- against PyTorch --------------------------------------------------------------------------


@settings(deadline=None, max_examples=60)
@given(case=lookups())
def test_embedding_matches_torch(case):
    table, ids, grad_x = case
    x, grad_table = torch_embedding(table, ids, grad_x)
    ours, cache = embedding_forward(Embedding(table), ids)
    assert_close(ours, x)
    assert_close(embedding_backward(grad_x, cache).table, grad_table)


@settings(deadline=None, max_examples=40)
@given(case=lookups())
def test_positional_embedding_matches_torch(case):
    table, _, x = case
    rng = np.random.default_rng(table.shape[0])
    positions = rng.standard_normal((x.shape[1] + 1, x.shape[0]))  # one row more than needed
    grad_y = rng.standard_normal(x.shape)
    seq = x.shape[1]
    y, (grad_positions, grad_x) = vjp(
        lambda positions, x: x + positions[:seq].T[:, :, None], [positions, x], grad_y
    )
    ours, cache = positional_forward(PositionalEmbedding(positions), x)
    assert_close(ours, y)
    grads, ours_grad_x = positional_backward(grad_y, cache)
    assert_close(grads.table, grad_positions)
    assert_close(ours_grad_x, grad_x)


# --- ids out of range, wrong shapes and kinds --------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        pytest.param(
            np.array([[0, 1], [3, 2]]), r"id 3 at position \(seq=1, batch=0\)", id="vocab"
        ),
        pytest.param(np.array([[0, -1], [1, 2]]), r"id -1 at position \(seq=0, batch=1\)", id="-1"),
    ],
)
def test_an_id_outside_the_vocabulary_is_refused_by_value_and_position(ids, message):
    with pytest.raises(ValueError, match=message + " is outside the vocabulary of 3 ids"):
        embedding_forward(Embedding(TABLE), ids)


def test_a_sequence_longer_than_the_positions_is_refused():
    with pytest.raises(ValueError, match="4 positions is longer than the 3 learned"):
        positional_forward(PositionalEmbedding(np.zeros((3, 2))), np.zeros((2, 4, 5)))


# vocab=5, features=3, seq=4, batch=2.
TABLE_5 = np.arange(15.0).reshape(5, 3)
IDS_5 = np.array([[0, 4], [2, 0], [0, 1], [3, 3]])
X_5, CACHE_5 = embedding_forward(Embedding(TABLE_5), IDS_5)
GRAD_X_5 = np.linspace(-1.0, 1.0, 24).reshape(3, 4, 2)


@pytest.mark.parametrize(
    ("call", "bound"),
    [
        pytest.param(
            lambda: embedding_scatter(GRAD_X_5.transpose(0, 2, 1), IDS_5, 5),
            ["features=3", "seq=2", "batch=4"],
            id="scatter: grad_x seq and batch swapped",
        ),
    ],
)
def test_wrong_shapes_raise_naming_the_dimension(call, bound):
    with raises_shape_error(*bound):
        call()


def test_ids_of_one_dimension_are_refused_naming_seq_and_batch():
    # The table bound vocab and features; ids must be (seq, batch): one sequence is not enough.
    with raises_shape_error("vocab=5", "features=3"):
        embedding_lookup(TABLE_5, IDS_5[0])
    with pytest.raises(TypeCheckError, match=r"ids\b.*\bseq batch\b"):
        embedding_lookup(TABLE_5, IDS_5[0])


@pytest.mark.parametrize(
    ("grad_x", "dimension"),
    [
        pytest.param(GRAD_X_5.transpose(0, 2, 1), "seq is 2", id="seq and batch swapped"),
        pytest.param(GRAD_X_5[:2], "features is 2", id="a feature short"),
    ],
)
def test_backward_refuses_a_gradient_not_shaped_like_the_forward_output(grad_x, dimension):
    # The cache binds vocab, features, seq and batch: backward's own arguments could not tell.
    with pytest.raises(TypeCheckError, match=f"argument grad_x: the size of dimension {dimension}"):
        embedding_backward(grad_x, CACHE_5)


def test_positional_backward_refuses_a_transposed_gradient():
    _, cache = positional_forward(PositionalEmbedding(np.zeros((6, 3))), GRAD_X_5)
    with pytest.raises(TypeCheckError, match="argument grad_y: the size of dimension seq is 2"):
        positional_backward(GRAD_X_5.transpose(0, 2, 1), cache)


def test_backward_refuses_a_cache_whose_ids_disagree_with_the_gradient():
    other = EmbeddingCache(TABLE_5, IDS_5[:3])
    with pytest.raises(TypeCheckError, match="dimension seq"):
        embedding_backward(GRAD_X_5, other)


def test_float_ids_and_integer_tables_are_refused():
    with pytest.raises(TypeCheckError, match="ids"):
        embedding_forward(Embedding(TABLE_5), IDS_5.astype(np.float64))
    with pytest.raises(TypeCheckError, match="table"):
        embedding_forward(Embedding(IDS_5), IDS_5)


# --- purity and dtypes ------------------------------------------------------------------------


def test_no_embedding_function_modifies_its_arguments(rng):
    table, positions = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    grad_x = rng.standard_normal((3, 4, 2))
    x = assert_leaves_inputs_alone(embedding_lookup, table, IDS_5)
    np.testing.assert_array_equal(x, table[IDS_5].transpose(2, 0, 1))
    assert_leaves_inputs_alone(embedding_scatter, grad_x, IDS_5, 5)
    assert_leaves_inputs_alone(lambda t, i: embedding_forward(Embedding(t), i), table, IDS_5)
    assert_leaves_inputs_alone(
        lambda g, t, i: embedding_backward(g, EmbeddingCache(t, i)), grad_x, table, IDS_5
    )
    assert_leaves_inputs_alone(
        lambda p, x: positional_forward(PositionalEmbedding(p), x), positions, x
    )
    _, cache = positional_forward(PositionalEmbedding(positions), x)
    assert_leaves_inputs_alone(lambda g: positional_backward(g, cache), grad_x)


def test_float32_in_float32_out(rng):
    table = rng.standard_normal((5, 3)).astype(np.float32)
    positions = rng.standard_normal((4, 3)).astype(np.float32)
    x, cache = embedding_forward(Embedding(table), IDS_5)
    assert x.dtype == np.float32
    assert embedding_backward(x, cache).table.dtype == np.float32
    y, position_cache = positional_forward(PositionalEmbedding(positions), x)
    assert y.dtype == np.float32
    grads, grad_x = positional_backward(y, position_cache)
    assert grads.table.dtype == np.float32 and grad_x.dtype == np.float32


def test_the_network_runs_from_integer_ids(rng):
    layers = [
        Embedding(rng.standard_normal((5, 3))),
        PositionalEmbedding(rng.standard_normal((4, 3))),
    ]
    output, caches = tbp.network_forward(layers, IDS_5)
    assert output.shape == (3, 4, 2)
    grad_output = rng.standard_normal(output.shape)
    grads, grad_x = tbp.network_backward(layers, caches, grad_output)
    assert grad_x is None
    np.testing.assert_array_equal(
        grads[1].table, positional_backward(grad_output, caches[1])[0].table
    )
    np.testing.assert_array_equal(grads[0].table, embedding_scatter(grad_output, IDS_5, 5))
