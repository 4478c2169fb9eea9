"""Tests for the sort task (datasets.sort_dataset) and the transformer built for it."""

import numpy as np
import pytest

import typedbackprop as tbp
from typedbackprop.datasets import sort_dataset
from typedbackprop.explain import explain_network
from typedbackprop.models import transformer
from typedbackprop.optimizers import AdamW


def test_each_example_is_the_digits_then_their_sorted_prefix_and_the_answer_is_sorted():
    data = sort_dataset(length=5, n_train=50, n_test=20, seed=3)
    assert data.x_train.shape == (9, 50) and data.y_train.shape == (5, 50)
    assert data.x_test.shape == (9, 20) and data.y_test.shape == (5, 20)
    for x, y in [(data.x_train, data.y_train), (data.x_test, data.y_test)]:
        digits = x[:5]
        np.testing.assert_array_equal(y, np.sort(digits, axis=0))
        np.testing.assert_array_equal(x[5:], y[:-1])  # the answer so far, teacher-forced
        assert x.min() >= 0 and x.max() < data.vocab == 10


def test_no_test_sequence_is_a_training_sequence_and_the_seed_decides_all():
    data = sort_dataset(length=3, n_train=400, n_test=300, seed=1)  # 700 of the 1000 there are
    train = {tuple(column) for column in data.x_train[:3].T}
    test = {tuple(column) for column in data.x_test[:3].T}
    assert len(train) == 400 and len(test) == 300 and not train & test
    again = sort_dataset(length=3, n_train=400, n_test=300, seed=1)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    assert not np.array_equal(
        sort_dataset(length=3, n_train=400, n_test=300, seed=2).x_train, data.x_train
    )


def test_asking_for_more_sequences_than_exist_is_refused():
    with pytest.raises(ValueError, match="cannot draw 90 \\+ 20 distinct sequences of 2 of 10"):
        sort_dataset(length=2, n_train=90, n_test=20)


def test_the_transformer_reads_ids_and_writes_logits_for_the_answer(rng):
    data = sort_dataset(n_train=16, n_test=4)
    layers = transformer(rng, features=16, heads=4, hidden=32)
    logits, _ = tbp.network_forward(layers, data.x_train)
    assert logits.shape == (10, 8, 16)  # vocab, answer, batch
    loss, grads = tbp.network_loss_and_grads(
        layers, data.x_train, data.y_train, "token_cross_entropy"
    )
    assert loss == pytest.approx(np.log(10.0), rel=0.05)  # small initial weights: near uniform
    assert [grad is None for grad in grads] == [False, False, False, False, True, False]
    lines = explain_network(layers, data.x_train, data.y_train, "token_cross_entropy")
    assert any(
        "S3 (4, 16, 15, 15) = k3.mT (4, 16, 15, 4) @ q3 (4, 16, 4, 15) / sqrt(4)" in line
        for line in lines
    )
    with pytest.raises(ValueError, match="heads=3 must divide features=16"):
        transformer(rng, features=16, heads=3)


def test_a_few_adamw_steps_lower_the_loss(rng):
    data = sort_dataset(n_train=256, n_test=4)
    layers = transformer(rng, features=16, heads=2, hidden=32)
    optimizer = AdamW(learning_rate=3e-3)
    state = optimizer.init(layers)
    losses = []
    for _ in range(40):
        loss, grads = tbp.network_loss_and_grads(
            layers, data.x_train, data.y_train, "token_cross_entropy"
        )
        layers, state = optimizer.step(layers, grads, state)
        losses.append(loss)
    assert losses[-1] < 0.6 * losses[0]


def test_the_sequence_data_sets_table_has_every_name_and_makes_the_same_data():
    from typing import get_args

    from typedbackprop.datasets import SEQUENCE_DATASETS, SequenceDatasetName

    assert tuple(SEQUENCE_DATASETS) == get_args(SequenceDatasetName) == ("sort", "recall")
    made, direct = SEQUENCE_DATASETS["sort"](seed=2), sort_dataset(seed=2)
    assert made.name == "sort"
    np.testing.assert_array_equal(made.x_test, direct.x_test)
    np.testing.assert_array_equal(made.y_train, direct.y_train)
