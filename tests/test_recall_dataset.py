"""Tests for the recall task (datasets.recall_dataset): answer the first token of a sequence."""

import numpy as np
import pytest

from typedbackprop.datasets import recall_dataset


def test_the_answer_is_the_first_token_and_the_rest_are_blanks():
    data = recall_dataset(length=30, n_train=50, n_test=20, seed=3, symbols=8)
    assert data.name == "recall" and data.vocab == 9  # 8 symbols and one blank
    assert data.x_train.shape == (30, 50) and data.y_train.shape == (1, 50)
    assert data.x_test.shape == (30, 20) and data.y_test.shape == (1, 20)
    for x, y in [(data.x_train, data.y_train), (data.x_test, data.y_test)]:
        np.testing.assert_array_equal(y[0], x[0])
        assert x[0].min() >= 0 and x[0].max() < 8
        assert (x[1:] == 8).all()  # the blank, id 8: nothing but the first token to go on
    assert len(np.unique(data.y_train)) > 1


def test_fillers_make_every_sequence_distinct_and_keep_test_out_of_training():
    data = recall_dataset(length=6, n_train=400, n_test=300, seed=1, symbols=4, fillers=3)
    assert data.vocab == 7
    assert data.x_train[1:].min() >= 4 and data.x_train[1:].max() <= 6
    train = {tuple(column) for column in data.x_train.T}
    test = {tuple(column) for column in data.x_test.T}
    assert len(train) == 400 and len(test) == 300 and not train & test
    np.testing.assert_array_equal(data.y_test[0], data.x_test[0])


def test_the_seed_decides_all():
    data = recall_dataset(length=10, n_train=100, n_test=30, seed=5, fillers=2)
    again = recall_dataset(length=10, n_train=100, n_test=30, seed=5, fillers=2)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    other = recall_dataset(length=10, n_train=100, n_test=30, seed=6, fillers=2)
    assert not np.array_equal(other.x_train, data.x_train)


def test_asking_for_more_distinct_sequences_than_exist_is_refused():
    # 2 symbols × 2 fillers ** 2 = 8 distinct sequences of 3 tokens
    with pytest.raises(ValueError, match=r"cannot draw 6 \+ 3 distinct sequences of 3 tokens"):
        recall_dataset(length=3, n_train=6, n_test=3, symbols=2, fillers=2)
    data = recall_dataset(length=3, n_train=5, n_test=3, symbols=2, fillers=2)  # all 8
    assert len({tuple(column) for column in np.hstack([data.x_train, data.x_test]).T}) == 8


@pytest.mark.parametrize(
    "options",
    [{"length": 1}, {"n_test": 0}, {"symbols": 0}, {"fillers": 0}],
    ids=["one token", "no test split", "no symbols", "no fillers"],
)
def test_sizes_below_one_are_refused(options):
    with pytest.raises(ValueError, match="recall needs length >= 2"):
        recall_dataset(**options)


def test_the_arrays_are_int_and_columns_are_examples():
    data = recall_dataset(n_train=8, n_test=4)
    assert data.x_train.dtype == np.int64 and data.x_train.flags.c_contiguous
    assert data.x_train.shape == (30, 8) and data.y_test.shape == (1, 4)
